//! zstd compression for the archive writer that spends no effort on data that does not
//! compress (random keys, files that are already compressed or encrypted).
//!
//! The output is one ordinary zstd frame, cut by zstd's own worker threads into jobs of
//! [`JOB`] input bytes, as `zstd -T0` does. Before a job is handed to a worker, a few
//! samples of it are compressed at level 1; when none of them saves at least a 32nd of
//! its size, the job is compressed at zstd's fastest level instead of the asked one, and
//! its blocks come out stored (raw) for about the cost of a copy. zstd lets the level
//! change between the jobs of a frame (`ZSTD_c_compressionLevel` applies to the next
//! job), so `zstd -d` and every other reader see a plain frame. The choice only ever
//! changes how well a job compresses, never what it decompresses to.
//!
//! The compressed bytes are written straight into the chunk the age layer takes next
//! ([`ChunkOut`]): no copy in between.

use std::io::{self, Write};
use zstd::zstd_safe::zstd_sys::ZSTD_EndDirective as EndDirective;
use zstd::zstd_safe::{CCtx, CParameter, InBuffer, OutBuffer};

/// Input bytes per zstd job. 1 MiB instead of zstd's default at level 3 (8 MiB): peak
/// memory drops from ~70 MiB to ~20 MiB with two workers, and a small forge tree (a few
/// MiB) is spread over both cores instead of landing in one job. Measured by
/// bench/run.sh.
pub const JOB: usize = 1 << 20;

/// Where the compressed stream goes, a chunk at a time.
pub trait ChunkOut {
    /// The chunk being filled; it is full at its capacity.
    fn chunk(&mut self) -> &mut Vec<u8>;
    /// Hands the (full) chunk on and starts an empty one.
    fn ship(&mut self) -> io::Result<()>;
}

pub struct Squeeze<O: ChunkOut> {
    cctx: CCtx<'static>,
    out: O,
    /// The level asked for, and the one set for the job being filled.
    level: i32,
    applied: i32,
    /// Bytes of the job being filled (its input so far).
    in_job: usize,
    /// `None` on one thread: without workers the level cannot change within a frame.
    probe: Option<Probe>,
    /// Small writes not handed to zstd yet (see [`GATHER`]).
    pending: Vec<u8>,
}

fn zstd_error(code: usize) -> io::Error {
    io::Error::other(format!("zstd: {}", zstd::zstd_safe::get_error_name(code)))
}

impl<O: ChunkOut> Squeeze<O> {
    /// `threads`: zstd workers (0 = compress on the calling thread, every job at `level`).
    pub fn new(out: O, level: i32, threads: u32) -> io::Result<Self> {
        let mut cctx = CCtx::try_create().ok_or_else(|| io::Error::other("zstd: out of memory"))?;
        let mut set = |p| cctx.set_parameter(p).map(drop).map_err(zstd_error);
        set(CParameter::CompressionLevel(level))?;
        set(CParameter::ChecksumFlag(true))?;
        if threads > 0 {
            set(CParameter::NbWorkers(threads))?;
            set(CParameter::JobSize(JOB as u32))?;
            // Each job starts by loading the end of the one before it into its match
            // tables; at level 3 that is 256 KiB by default, sized for zstd's 8 MiB jobs:
            // a quarter more work per 1 MiB job. 2^-5 of the window (64 KiB) costs 14 %
            // less CPU for the same size (bench data: -0.01 %).
            set(CParameter::OverlapSizeLog(4))?;
        }
        Ok(Squeeze {
            cctx,
            out,
            level,
            applied: level,
            in_job: 0,
            probe: (threads > 0).then(Probe::new),
            pending: Vec::with_capacity(GATHER),
        })
    }

    /// One call into zstd, its output appended to the current chunk; returns what zstd
    /// still has to flush.
    fn step(&mut self, input: &mut InBuffer<'_>, end: EndDirective) -> io::Result<usize> {
        if self.out.chunk().len() == self.out.chunk().capacity() {
            self.out.ship()?;
        }
        let chunk = self.out.chunk();
        let pos = chunk.len();
        let mut output = OutBuffer::around_pos(chunk, pos);
        self.cctx
            .compress_stream2(&mut output, input, end)
            .map_err(zstd_error)
    }

    /// Before the job being filled goes to a worker: the level it deserves.
    fn choose_level(&mut self) -> io::Result<()> {
        let Some(probe) = &mut self.probe else {
            return Ok(());
        };
        let level = if probe.verdict() {
            self.level
        } else {
            zstd::zstd_safe::min_c_level()
        };
        if level != self.applied {
            self.cctx
                .set_parameter(CParameter::CompressionLevel(level))
                .map_err(zstd_error)?;
            self.applied = level;
        }
        Ok(())
    }

    /// Ends the frame (the last job, its checksum) and returns the output.
    pub fn finish(mut self) -> io::Result<O> {
        self.drain()?;
        self.choose_level()?;
        let mut empty = InBuffer::around(&[]);
        while self.step(&mut empty, EndDirective::ZSTD_e_end)? != 0 {}
        Ok(self.out)
    }
}

impl<O: ChunkOut> Squeeze<O> {
    /// Hands `data` to zstd, taking at most what completes the job being filled, so
    /// that the level is chosen before zstd sees the job's last byte (the moment it
    /// gives the job to a worker).
    fn push(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(JOB - self.in_job);
        let part = &data[..n];
        if let Some(probe) = &mut self.probe {
            probe.observe(self.in_job, part);
        }
        self.in_job += n;
        if self.in_job == JOB {
            self.choose_level()?;
            self.in_job = 0;
        }
        let mut input = InBuffer::around(part);
        while input.pos < part.len() {
            self.step(&mut input, EndDirective::ZSTD_e_continue)?;
        }
        Ok(n)
    }

    /// Hands the small writes gathered so far to zstd.
    fn drain(&mut self) -> io::Result<()> {
        let pending = std::mem::take(&mut self.pending);
        let mut rest = &pending[..];
        while !rest.is_empty() {
            let n = self.push(rest)?;
            rest = &rest[n..];
        }
        self.pending = pending;
        self.pending.clear();
        Ok(())
    }
}

/// Writes smaller than this are gathered first: a tar header (512 bytes), a small
/// file, padding. With workers, every call into zstd takes its locks; 50,000 small
/// files made 150,000 calls.
const GATHER: usize = 64 << 10;

impl<O: ChunkOut> Write for Squeeze<O> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.len() < GATHER && self.pending.len() + data.len() <= GATHER {
            self.pending.extend_from_slice(data);
            return Ok(data.len());
        }
        self.drain()?;
        if data.len() < GATHER {
            self.pending.extend_from_slice(data);
            return Ok(data.len());
        }
        self.push(data)
    }

    /// Nothing: a flush would make zstd end a job early and wait for it.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Samples of a job, and whether any of them compresses.
struct Probe {
    cctx: CCtx<'static>,
    sample: Vec<u8>,
    /// Room for a sample that saved at least a 32nd: a sample that does not fit is
    /// incompressible (zstd says so with `dstSize_tooSmall`).
    scratch: Box<[u8]>,
    tested: bool,
    compressible: bool,
}

/// Sample size, and how many samples a job gets: spread evenly from its first byte to its
/// last, so that a job holding the end of one file and the start of another is judged on
/// both (text in a gap between two samples, at most 64 KiB, may be stored as it is).
const SAMPLE: usize = 4 << 10;
const SAMPLES: usize = 16;
const SAMPLE_STEP: usize = (JOB - SAMPLE) / (SAMPLES - 1);
/// Level of the trial compression: the fastest that searches for matches.
const SAMPLE_LEVEL: i32 = 1;

impl Probe {
    fn new() -> Self {
        Probe {
            cctx: CCtx::create(),
            sample: Vec::with_capacity(SAMPLE),
            scratch: vec![0; SAMPLE - SAMPLE / 32].into_boxed_slice(),
            tested: false,
            compressible: false,
        }
    }

    /// `data` is the job's input from offset `at`.
    fn observe(&mut self, at: usize, data: &[u8]) {
        for start in (0..SAMPLES).map(|k| k * SAMPLE_STEP) {
            if self.compressible {
                return; // decided: the job is compressed at the asked level
            }
            let (lo, hi) = (at.max(start), (at + data.len()).min(start + SAMPLE));
            if lo >= hi {
                continue;
            }
            self.sample.extend_from_slice(&data[lo - at..hi - at]);
            if hi == start + SAMPLE {
                let fits = self
                    .cctx
                    .compress(&mut self.scratch[..], &self.sample, SAMPLE_LEVEL)
                    .is_ok();
                self.compressible |= fits;
                self.tested = true;
                self.sample.clear();
            }
        }
    }

    /// Whether the job deserves the asked level (also when too short to have a full
    /// sample); then ready for the next job.
    fn verdict(&mut self) -> bool {
        let v = self.compressible || !self.tested;
        self.sample.clear();
        self.tested = false;
        self.compressible = false;
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Chunks(Vec<u8>, Vec<u8>);
    impl ChunkOut for Chunks {
        fn chunk(&mut self) -> &mut Vec<u8> {
            &mut self.1
        }
        fn ship(&mut self) -> io::Result<()> {
            self.0.append(&mut self.1);
            self.1.reserve_exact(4096);
            Ok(())
        }
    }

    fn squeeze(data: &[u8], threads: u32) -> Vec<u8> {
        let mut z = Squeeze::new(Chunks(Vec::new(), Vec::with_capacity(4096)), 3, threads).unwrap();
        // Uneven writes, small (gathered) and large, across job boundaries.
        let sizes = [1, 511, 512, 65_535, 300_001, 3, 65_536, 2048];
        let mut rest = data;
        for size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, more) = rest.split_at((*size).min(rest.len()));
            z.write_all(piece).unwrap();
            rest = more;
        }
        let mut c = z.finish().unwrap();
        c.ship().unwrap();
        c.0
    }

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn mixed_data_round_trips() {
        let text: Vec<u8> = b"gitea woodpecker secret token runner "
            .iter()
            .copied()
            .cycle()
            .take(3 * JOB)
            .collect();
        let mut data = text.clone();
        data.extend(noise(4 * JOB + 12345, 7));
        data.extend(&text);
        for threads in [0, 2] {
            let z = squeeze(&data, threads);
            assert_eq!(zstd::decode_all(&z[..]).unwrap(), data, "threads {threads}");
            // Noise cannot shrink; stored, it grows by block headers only.
            assert!(z.len() < 4 * JOB + 12345 + 4096, "{} bytes", z.len());
        }
    }

    #[test]
    fn the_probe_tells_noise_from_text() {
        let mut p = Probe::new();
        let job = noise(JOB, 3);
        for piece in job.chunks(65536) {
            p.observe(piece.as_ptr() as usize - job.as_ptr() as usize, piece);
        }
        assert!(!p.verdict(), "noise is not worth searching");
        // A job of noise whose last quarter is text is compressed.
        let mut job = noise(JOB, 5);
        job[3 * JOB / 4..].fill(b'x');
        p.observe(0, &job);
        assert!(p.verdict());
        // Too short for one sample: the asked level.
        p.observe(0, &noise(100, 9));
        assert!(p.verdict());
    }

    #[test]
    fn a_short_stream_is_compressed_at_the_asked_level() {
        let data = b"[security]\nSECRET_KEY = abc\n".repeat(100);
        let z = squeeze(&data, 2);
        assert!(z.len() < data.len() / 10);
        assert_eq!(zstd::decode_all(&z[..]).unwrap(), data);
    }
}
