"""USB frame decoding, ephysd's decoder against pyxdaq's numpy parser, on the same bytes in one
run: speed, and agreement field by field.

1. `write_rhd_frames` (drivers/examples) writes `--seconds` of frames of a 1024-channel board
   (32 RHD streams at 30 kHz) in the XDAQ's frame format, which is what pyxdaq parses: the RHD
   controller's field order with 32-bit TTL words and its own filler (`--board xdaq-rhd-gen1`,
   the default, or `xdaq-rhd-gen2`, which adds the device timestamp). Random samples in every
   field, consecutive sample indices.
2. Speed, on one core each (this process and its child pinned to `--core`), the bytes in
   memory, best and median of `--repeat` passes over the whole file:
   a. pyxdaq: `DataBlock.from_buffer(...).to_samples()` (`pyxdaq/datablock.py`, what its
      `XDAQ.start_receiving_samples` runs on every buffer), then `amplifier2uv(samples.amp)`,
      over chunks of 300 frames (what pyxdaq streams in: `start_receiving_buffer` asks for
      1/100 s per buffer), of `--block` frames (as ephysd decodes) and over the whole file at
      once (numpy's best case);
   b. ephysd: `decode_file` (drivers/examples) decodes the same file block by block into a
      `FrameBlock` (`--block` frames), and again converting the amplifier samples to f32 µV
      into a reused buffer.
   Both are timed twice: from memory (the whole file, far larger than the cache) and hot (the
   file's first chunk decoded over and over, as many times as the file has chunks: the bytes
   are in the cache, as those of a USB transfer just copied in are). Each prints × real time;
   the ratios are pyxdaq's best time over ours (parse against decode, parse + µV against
   decode + µV), for pyxdaq as it streams (300-frame chunks) and for its fastest way.
3. Agreement: `decode_file --dump` writes what it decoded; every field is compared with
   pyxdaq's parse of the whole file (sample index, amplifiers as `raw − 32768` in channel order
   `stream × 32 + channel`, aux as `stream × 3 + slot`, ADCs, 32-bit TTL in and out, and the
   gen 2 device timestamp).

Usage (from the repository root):

    python drivers/benches/codec_side_by_side.py [--seconds 1] [--repeat 10] [--block 128]
        [--board xdaq-rhd-gen1|xdaq-rhd-gen2] [--core 0] [--no-build]

Needs numpy and pyxdaq (`pip install --no-deps pyxdaq`: its parser is pure numpy; its
dependency `pylibxdaq`, the device library, has no build for this platform and is not used).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

try:
    from pyxdaq.datablock import DataBlock, amplifier2uv, get_sample_size
except ImportError as e:  # pragma: no cover
    sys.exit(f"pyxdaq is needed: pip install --no-deps pyxdaq ({e})")

ROOT = Path(__file__).resolve().parents[2]
RATE = 30_000
STREAMS = 32
# pyxdaq's streaming buffers: `XDAQ.start_receiving_buffer` sizes them to 1/100 s of frames.
PYXDAQ_CHUNK = RATE // 100


def pyxdaq_pass(buf: memoryview, sample_size: int, frames_per_chunk: int, ts: bool, uv: bool, hot: bool) -> int:
    """What pyxdaq does with every buffer it receives, over the whole file in chunks (or, hot, over
    the file's first chunk as many times)."""
    step = frames_per_chunk * sample_size
    n = 0
    for at in range(0, len(buf), step):
        chunk = buf[:min(step, len(buf) - at)] if hot else buf[at:at + step]
        s = DataBlock.from_buffer(False, sample_size, chunk, STREAMS, ts).to_samples()
        if uv:
            amplifier2uv(s.amp)
        n += s.n
    return n


def timed(fn, repeat: int):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[0], times[len(times) // 2]


def compare(dump: Path, raw: bytes, sample_size: int, ts: bool) -> list:
    s = DataBlock.from_buffer(False, sample_size, raw, STREAMS, ts).to_samples()
    n = s.n
    ours = {
        "frame_index": np.fromfile(dump / "frame_index.u64", "<u8"),
        "amplifier": np.fromfile(dump / "amplifier.i16", "<i2").reshape(n, STREAMS * 32),
        "aux": np.fromfile(dump / "aux.u16", "<u2").reshape(n, STREAMS * 3),
        "analog_in": np.fromfile(dump / "analog_in.u16", "<u2").reshape(n, 8),
        "digital_in": np.fromfile(dump / "digital_in.u32", "<u4"),
        "digital_out": np.fromfile(dump / "digital_out.u32", "<u4"),
    }
    theirs = {
        "frame_index": s.sample_index.astype(np.uint64),
        # [n, streams, channels] → channel stream × 32 + channel
        "amplifier": (s.amp.astype(np.int32) - 32768).reshape(n, STREAMS * 32),
        # [n, slots, streams] → stream × 3 + slot
        "aux": s.aux.transpose(0, 2, 1).reshape(n, STREAMS * 3),
        "analog_in": s.adc,
        "digital_in": s.ttlin.reshape(n),
        "digital_out": s.ttlout.reshape(n),
    }
    if ts:
        ours["device_timestamp"] = np.fromfile(dump / "device_timestamp.u64", "<u8")
        theirs["device_timestamp"] = s.timestamp
    bad = [k for k in ours if ours[k].shape != theirs[k].shape or not np.array_equal(ours[k], theirs[k])]
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--board", default="xdaq-rhd-gen1", choices=["xdaq-rhd-gen1", "xdaq-rhd-gen2"])
    ap.add_argument("--core", type=int, default=0)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()

    os.sched_setaffinity(0, {args.core})  # inherited by the child processes
    if not args.no_build:
        subprocess.run(
            ["cargo", "build", "--release", "-q", "-p", "ephysd-drivers", "--example", "write_rhd_frames",
             "--example", "decode_file"],
            cwd=ROOT, check=True)
    examples = ROOT / "target" / "release" / "examples"
    ts = args.board.endswith("gen2")
    frames = int(round(args.seconds * RATE))
    sample_size = get_sample_size(False, STREAMS, ts)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.bin"
        out = subprocess.run(
            [examples / "write_rhd_frames", path, "--board", args.board, "--streams", str(STREAMS),
             "--frames", str(frames)],
            check=True, capture_output=True, text=True)
        ours_size = int(out.stdout.strip())
        if ours_size != sample_size:
            sys.exit(f"frame sizes differ: ours {ours_size} bytes, pyxdaq's get_sample_size {sample_size}")
        raw = path.read_bytes()
        buf = memoryview(raw)

        # pyxdaq, warmed up once (dtype cache, imports).
        pyxdaq_pass(buf, sample_size, args.block, ts, True, False)
        chunks = [(f"{PYXDAQ_CHUNK}-frame chunks", PYXDAQ_CHUNK), (f"{args.block}-frame chunks", args.block),
                  ("whole file", frames)]
        py = {}
        for hot in (False, True):
            for label, chunk in chunks:
                if hot and chunk == frames:
                    continue
                for uv in (False, True):
                    py[(hot, uv, label)] = timed(
                        lambda c=chunk, u=uv, h=hot: pyxdaq_pass(buf, sample_size, c, ts, u, h), args.repeat)

        dump = Path(tmp) / "dump"
        rs = {}
        for hot in (False, True):
            cmd = [examples / "decode_file", path, "--board", args.board, "--streams", str(STREAMS), "--block",
                   str(args.block), "--repeat", str(args.repeat)]
            cmd += ["--hot"] if hot else ["--dump", dump]
            rs[hot] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        bad = compare(dump, raw, sample_size, ts)

    seconds = frames / RATE
    mb = len(raw) / 1e6
    print(f"{args.board}, {STREAMS * 32} channels, {frames} frames ({seconds:g} s, {mb:.1f} MB, "
          f"{sample_size} bytes per frame), ephysd in {args.block}-frame blocks, best / median of {args.repeat}, "
          f"core {args.core}")
    streaming = f"{PYXDAQ_CHUNK}-frame chunks"
    for hot in (False, True):
        print()
        print("hot: the first chunk over and over, in the cache as a USB transfer just copied in" if hot else
              "from memory: the whole file, far larger than the cache")
        print(f"{'':41} {'best':>10} {'median':>10} {'× real time':>12}")
        for (h, uv, label), (best, median) in py.items():
            if h == hot:
                name = f"parse{' + µV' if uv else ''}, {label}"
                print(f"pyxdaq {name:34} {best * 1e3:8.2f} ms {median * 1e3:7.2f} ms {seconds / best:11.1f}×")
        r = rs[hot]
        ours = {False: (r["decode_best_s"], r["decode_median_s"]),
                True: (r["decode_uv_best_s"], r["decode_uv_median_s"])}
        for uv, (best, median) in ours.items():
            name = "decode + µV" if uv else "decode"
            print(f"ephysd {name:34} {best * 1e3:8.2f} ms {median * 1e3:7.2f} ms {seconds / best:11.1f}×")
        for uv in (False, True):
            what = "parse + µV / decode + µV" if uv else "parse / decode"
            as_streamed = py[(hot, uv, streaming)][0] / ours[uv][0]
            fastest = min(v[0] for (h, u, _), v in py.items() if h == hot and u == uv) / ours[uv][0]
            print(f"ratio {what}: pyxdaq as it streams ({streaming}) {as_streamed:.1f}×, pyxdaq's fastest "
                  f"{fastest:.1f}×")
    print()
    if bad:
        print(f"DISAGREE with pyxdaq on: {', '.join(bad)}")
        return 1
    print("agreement with pyxdaq: every field of every frame identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
