//! The archive reader on arbitrary decrypted bytes: zstd → tar → manifest → members →
//! SHA256SUMS, everything after age. The first byte chooses the layer the fuzzer plays
//! with: odd, the rest is a tar archive (compressed here, so mutations reach the tar,
//! manifest and checksum rules); even, the rest is the zstd stream itself.
#![no_main]
use forgekeep::archive::limits::Limits;
use forgekeep::archive::manifest::{Entry, Manifest};
use forgekeep::archive::reader::{read_plaintext, Visitor};
use libfuzzer_sys::fuzz_target;
use std::io::Read;

/// Reads part of each file, as a restore does when it stops comparing early.
struct Partial;
impl Visitor for Partial {
    fn manifest(&mut self, m: &std::sync::Arc<Manifest>) -> forgekeep::error::Result<()> {
        let _ = m.entries.len();
        Ok(())
    }
    fn entry(&mut self, i: usize, _: &Entry, data: &mut dyn Read) -> forgekeep::error::Result<()> {
        let mut buf = [0u8; 100];
        let _ = data.read(&mut buf[..i % 100]);
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_entries: 1000,
        max_manifest_bytes: 1 << 20,
        max_content_bytes: 1 << 24,
    };
    let compressed;
    let plaintext = if mode & 1 == 1 {
        compressed = zstd::stream::encode_all(rest, 1).expect("zstd compresses");
        &compressed[..]
    } else {
        rest
    };
    let _ = read_plaintext(plaintext, "fuzz", &limits, None, &mut Partial);
});
