#!/usr/bin/env python3
"""Writes the plaintext tar of a hostile-but-valid forgekeep archive for bench/hostile.sh.

    hostile.py KIND N OUT.tar

KIND:
  deep   one file entry N folders deep (the folders not listed, as the red team's was):
         the "nothing below a link" check once re-hashed every prefix of it (quadratic)
  chains N/200 chains of 200 nested folders each (N entries in all, each at depth <= 200)
  wide   N files in one folder /a (with /b beside it): `--only '/a/*'` once compared every
         entry with every match (quadratic)
  big    a manifest of N entries and nothing else (ceilings and memory): the members
         are left out, so a reader that parses it all fails later, at the first member

Every archive but `big` is complete and valid for forgekeep's reader (sorted manifest,
every folder listed, members in order, SHA256SUMS); encrypt it with zstd and age.
"""
import hashlib
import io
import json
import sys
import tarfile


def entry(path, kind, role="content", size=0, sha=None):
    e = {"path": path, "type": kind, "role": role, "source": 0, "size": size,
         "mode": "0700" if kind == "dir" else "0600", "uid": 0, "gid": 0, "mtime": 0}
    if sha:
        e["sha256"] = sha
    return e


def manifest(source, entries):
    return {"format": "forgekeep-archive", "version": 1, "tool": "bench", "created": "2026-01-01T00:00:00Z",
            "host": "bench", "sources": [{"given": source, "path": source, "ownership": "numeric"}],
            "findings": [], "entries": entries}


def member(tar, e, data=b""):
    ti = tarfile.TarInfo(e["path"].lstrip("/"))
    ti.type = tarfile.DIRTYPE if e["type"] == "dir" else tarfile.REGTYPE
    ti.mode = int(e["mode"], 8)
    ti.size = len(data)
    tar.addfile(ti, io.BytesIO(data) if data else None)


def write(out, m, with_members=True):
    data = json.dumps(m, separators=(",", ":")).encode() + b"\n"
    with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tar:
        ti = tarfile.TarInfo("forgekeep/manifest.json")
        ti.size = len(data)
        ti.mode = 0o600
        tar.addfile(ti, io.BytesIO(data))
        if not with_members:
            return
        sums = []
        for e in m["entries"]:
            content = b"x\n" if e["type"] == "file" else b""
            member(tar, e, content)
            if e["type"] == "file":
                sums.append(f"{hashlib.sha256(content).hexdigest()}  {e['path'].lstrip('/')}\n")
        s = "".join(sums).encode()
        ti = tarfile.TarInfo("forgekeep/SHA256SUMS")
        ti.size = len(s)
        ti.mode = 0o600
        tar.addfile(ti, io.BytesIO(s))


def main():
    kind, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    x2 = hashlib.sha256(b"x\n").hexdigest()
    if kind == "deep":
        entries = [entry("/a", "dir"), entry("/a" + "/d" * n + "/f", "file", size=2, sha=x2)]
        write(out, manifest("/a", entries))
    elif kind == "chains":
        entries = [entry("/a", "dir")]
        for c in range(n // 200):
            p = f"/a/c{c:06d}"
            for _ in range(200):
                entries.append(entry(p, "dir"))
                p += "/d"
        entries.sort(key=lambda e: e["path"])
        m = manifest("/a", entries)
        write(out, m)
    elif kind == "wide":
        entries = [entry("/a", "dir")]
        entries += [entry(f"/a/{i:07d}", "file", size=2, sha=x2) for i in range(n)]
        entries.sort(key=lambda e: e["path"])
        write(out, manifest("/a", entries))
    elif kind == "big":
        # No digests: ~105 bytes of JSON per entry, as the red team's 253 MiB for 2.35 M.
        entries = [entry("/a", "dir")] + [entry(f"/a/{i:08d}", "file", size=2) for i in range(n)]
        write(out, manifest("/a", entries), with_members=False)
    else:
        sys.exit(f"unknown kind {kind}")


main()
