"""Open a video in a child process first, so that no file makes the bot's process allocate
beyond the budget or hang.

FFmpeg's demuxers size their tables from fields in the file: one flipped bit in an MP4 box can
make the open alone allocate most of a gigabyte, and nothing in the headers OpenCV reports
tells beforehand. So the open, the declared properties and the first frame are tried first in
a child interpreter (``python -m core.media.video_probe PATH``), killed past the time limit, whose
peak resident memory is measured. Only a file that opened within the budget is opened again for
real; that open allocates what the child's did. The child's own address space is capped
(``RLIMIT_AS``) well above the budget, so even the child cannot take the machine's memory.

A fresh interpreter rather than a fork: the bot's process has many threads (forking it is
unsafe), and multiprocessing's forkserver re-imports the parent's main module in every child.
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from core.errors import UnreadableVideoError, VideoTooComplexError, VideoTooLargeError
from core.media.decode_guard import DECODE_TIMEOUT_S, MAX_VIDEO_FRAME_PIXELS

__all__ = ["PROBE_MEMORY", "Probe", "check_video", "probe_video"]

PROBE_MEMORY: Final = 256 * 2**20
"""Resident memory the open and the first frame may add; above it the file is refused."""

PROBE_RESERVED: Final = 2**30
"""Address space the open and the first frame may reserve (touched or not): the real open,
with its decoding threads, would ask for the same."""

PROBE_ADDRESS_CAP: Final = 8 * 2**30
"""Address space the child may add at all: a hard stop, high enough that a file asking for too
much is measured and refused rather than opened in a degraded way."""

_W, _H, _FPS, _COUNT = 3, 4, 5, 7  # cv2.CAP_PROP_FRAME_WIDTH, HEIGHT, FPS, FRAME_COUNT
_PACKAGE_ROOT: Final = str(Path(__file__).resolve().parents[1])


@dataclass(frozen=True, slots=True)
class Probe:
    """What the child saw: ``opened`` False means FFmpeg refused the file."""

    opened: bool
    peak_extra: int = 0  # bytes of resident memory the open and first frame added
    reserved_extra: int = 0  # bytes of address space they reserved
    width: float = 0.0
    height: float = 0.0
    fps: float = 0.0
    frame_count: float = 0.0
    first_frame: tuple[int, int] | None = None  # (height, width) as decoded


def proc_status_bytes(field: str) -> int:
    """A ``Vm*`` line of this process's /proc status, in bytes (0 when absent)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return 0


def _growth(resident: int, reserved: int) -> tuple[int, int]:
    """Peak resident and peak reserved memory since the given readings."""
    return proc_status_bytes("VmHWM:") - resident, proc_status_bytes("VmPeak:") - reserved


def _probe(path: str) -> Probe:
    """Runs in the child: open, read the properties and the first frame."""
    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "threads;1"  # one thread: a small child
    import cv2

    cap_bytes = proc_status_bytes("VmSize:") + PROBE_ADDRESS_CAP
    resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))
    before, reserved = proc_status_bytes("VmRSS:"), proc_status_bytes("VmSize:")
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            return Probe(False, *_growth(before, reserved))
        width, height, fps, count = (cap.get(p) for p in (_W, _H, _FPS, _COUNT))
        shape = None
        if cap.grab():
            ok, frame = cap.retrieve()
            if ok and frame is not None:
                shape = (int(frame.shape[0]), int(frame.shape[1]))
        growth = _growth(before, reserved)
        return Probe(True, *growth, width, height, fps, count, first_frame=shape)
    finally:
        cap.release()


def probe_video(path: Path, *, timeout_s: float = DECODE_TIMEOUT_S) -> Probe | None:
    """Probe ``path`` in a child; None when it ran out of time or died (out of memory)."""
    paths = [_PACKAGE_ROOT, os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    command = [sys.executable, "-m", "core.media.video_probe", str(path)]
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout_s, env=env, check=False)
    except subprocess.TimeoutExpired:
        return None
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    if done.returncode != 0 or not lines:
        return None  # MemoryError, or FFmpeg aborted under the limit
    fields = json.loads(lines[-1])
    shape = fields.pop("first_frame")
    return Probe(**fields, first_frame=tuple(shape) if shape else None)


def check_video(path: Path, *, timeout_s: float = DECODE_TIMEOUT_S) -> Probe:
    """Raise the typed error for a video that cannot be opened within the limits, or whose
    frames (declared or decoded) are larger than we decode; return what the probe saw."""
    probe = probe_video(path, timeout_s=timeout_s)
    if probe is None or probe.peak_extra > PROBE_MEMORY or probe.reserved_extra > PROBE_RESERVED:
        raise VideoTooComplexError(
            f"opening the video needs more than {PROBE_MEMORY // 2**20} MB or {timeout_s:g} s"
        )
    if not probe.opened:
        raise UnreadableVideoError("not a video format we can read, or damaged")
    sizes = [(probe.width, probe.height)]
    if probe.first_frame is not None:
        sizes.append((probe.first_frame[1], probe.first_frame[0]))
    for w, h in sizes:
        if math.isfinite(w) and math.isfinite(h) and w * h > MAX_VIDEO_FRAME_PIXELS:
            raise VideoTooLargeError(f"the video frames are too large: {w:.0f}x{h:.0f} pixels")
    return probe


def main(argv: list[str]) -> int:
    print(json.dumps(asdict(_probe(argv[0]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
