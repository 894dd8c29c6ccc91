"""Writes a recording of the ephysd layout the way cl-sdk's writer writes its recordings, and
prints how long it took, for `cargo bench -p ephysd-hdf5 --bench writer` to compare with
ephysd's writer in the same run.

Like cl-sdk's RecordingWriter: PyTables, an EArray for /samples with 256-frame chunks and no
filters, tables for /spikes and /stims (a timestamp index created at close), a flush after
each batch of table rows, and here a file flush every second of signal (ephysd's crash-safety
flush). The same frame-aligned datasets as ephysd's layout are written: /samples,
/frame_index, /analog_in, /digital_in, /digital_out.

usage: pytables_writer.py PATH CHANNELS SECONDS BLOCK_FRAMES SPIKES_PER_SECOND
prints: {"seconds": <wall time until the file is closed and fsynced>, "frames": <frames written>}
"""

import json
import os
import sys
import time

import numpy as np
import tables

RATE = 30_000


class SpikeRow(tables.IsDescription):
    timestamp = tables.Int64Col(pos=0)
    channel = tables.UInt16Col(pos=1)
    samples = tables.Float32Col(shape=(75,), pos=2)
    unit = tables.Int32Col(pos=3)


class StimRow(tables.IsDescription):
    timestamp = tables.Int64Col(pos=0)
    channel = tables.UInt16Col(pos=1)
    design_id = tables.UInt32Col(pos=2)


def main() -> None:
    path, channels, seconds, block, spikes_per_second = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    frames = int(seconds * RATE)
    # The same pattern ephysd's benchmark writes.
    samples_block = ((np.arange(block * channels) % 4096) - 2048).astype(np.int16).reshape(block, channels)
    analog_block = np.full((block, 8), 32768, dtype=np.uint16)
    digital_block = np.zeros(block, dtype=np.uint16)
    snippet = np.linspace(-50, 20, 75, dtype=np.float32)
    spike_every = RATE // spikes_per_second

    start = time.perf_counter()
    f = tables.open_file(path, mode="w")
    for key, value in {"frames_per_second": float(RATE), "channel_count": channels, "uV_per_sample_unit": 0.195}.items():
        f.root._v_attrs[key] = value
    samples = f.create_earray("/", "samples", tables.Int16Atom(), shape=(0, channels), chunkshape=(256, channels), filters=None)
    frame_index = f.create_earray("/", "frame_index", tables.UInt64Atom(), shape=(0,), chunkshape=(256,))
    analog = f.create_earray("/", "analog_in", tables.UInt16Atom(), shape=(0, 8), chunkshape=(256, 8))
    din = f.create_earray("/", "digital_in", tables.UInt16Atom(), shape=(0,), chunkshape=(256,))
    dout = f.create_earray("/", "digital_out", tables.UInt16Atom(), shape=(0,), chunkshape=(256,))
    spikes = f.create_table("/", "spikes", SpikeRow, expectedrows=10_000_000, filters=None)
    stims = f.create_table("/", "stims", StimRow, expectedrows=10_000_000, filters=None)
    f.create_group("/", "data_stream")

    written = 0
    next_flush = RATE
    while written < frames:
        n = min(block, frames - written)
        samples.append(samples_block[:n])
        frame_index.append(np.arange(written, written + n, dtype=np.uint64))
        analog.append(analog_block[:n])
        din.append(digital_block[:n])
        dout.append(digital_block[:n])
        rows = 0
        for frame in range(written - written % spike_every + spike_every, written + n, spike_every):
            if frame < written:
                continue
            row = spikes.row
            row["timestamp"] = frame
            row["channel"] = frame % channels
            row["samples"] = snippet
            row["unit"] = -1
            row.append()
            rows += 1
        if rows:
            spikes.flush()
        written += n
        if written >= next_flush:
            f.flush()
            next_flush += RATE
    spikes.cols.timestamp.create_index()
    stims.cols.timestamp.create_index()
    f.close()
    # Done means on disk, for both writers compared.
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    elapsed = time.perf_counter() - start
    print(json.dumps({"seconds": elapsed, "frames": written}))


if __name__ == "__main__":
    main()
