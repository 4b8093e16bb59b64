"""What tesseract reads of a picture, from the detector's regions: calm regions merged into
blocks (a paragraph or a chat bubble is read as one, with its line order), busy regions each
on its own, every block with the height of a typical line in it, so that huge text can be
shrunk to a size tesseract reads as well and faster, and specks too small to hold a readable
line are not read at all."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from core.ocr.detect import Detection, TextRegion

__all__ = ["Block", "merge_regions", "plan_blocks"]

# More regions than this: read the whole picture once rather than region by region.
MAX_REGIONS = 48
# A region lower than this (pixels of the OCR image) holds no line tesseract can read.
MIN_LINE_PX = 8
# Regions are grown by half their height to merge with their neighbours, at most by this
# share of the picture's longer side (a region of several lines is tall, not far from others).
MAX_PAD = 1 / 40


@dataclass(frozen=True, slots=True)
class Block:
    """A rectangle to read, the median height of the regions in it, whether it lies over a
    busy background (then it is read as one block of text, first from a mask of its text),
    and the detector's regions it holds (each should yield words, or it is read alone)."""

    box: TextRegion
    line_px: int
    busy: bool = False
    regions: tuple[TextRegion, ...] = ()

    def alone(self, region: TextRegion, size: tuple[int, int]) -> Block:
        """A block of one of this block's regions, padded as a busy region is."""
        pad = min(_pad(size), max(3, region.height // 4))
        return Block(region.padded(pad, size), region.height, region.busy, (region,))


def plan_blocks(found: Detection) -> list[Block]:
    """The blocks to read, top to bottom (see the module docstring)."""
    regions = [r for r in found.regions if r.height >= MIN_LINE_PX]
    if not regions:
        return []
    size = found.size
    if len(regions) > MAX_REGIONS:
        line = int(statistics.median(r.height for r in regions))
        return [Block(TextRegion(0, 0, size[0], size[1]), line)]
    groups = _merge([r for r in regions if not r.busy], size)
    blocks = [
        Block(box, int(statistics.median(r.height for r in members)), False, tuple(members))
        for box, members in groups
    ]
    whole = Block(TextRegion(0, 0, size[0], size[1]), 0)
    blocks += [whole.alone(r, size) for r in regions if r.busy]
    return sorted(blocks, key=lambda b: (b.box.top, b.box.left))


def merge_regions(regions: list[TextRegion], size: tuple[int, int]) -> list[TextRegion]:
    """Calm regions grown by about a line's height and merged where they then overlap."""
    return [box for box, _ in _merge(regions, size)]


def _pad(size: tuple[int, int]) -> int:
    return max(4, round(MAX_PAD * max(size)))


def _merge(
    regions: list[TextRegion], size: tuple[int, int]
) -> list[tuple[TextRegion, list[TextRegion]]]:
    """Merged boxes with the regions each holds, top to bottom."""
    cap = _pad(size)
    groups = [(r.padded(min(cap, max(4, r.height // 2)), size), [r]) for r in regions]
    merged = True
    while merged:
        merged = False
        out: list[tuple[TextRegion, list[TextRegion]]] = []
        for box, members in groups:
            for i, (other, others) in enumerate(out):
                if _overlap(box, other):
                    out[i] = (_union(box, other), others + members)
                    merged = True
                    break
            else:
                out.append((box, members))
        groups = out
    return sorted(groups, key=lambda g: (g[0].top, g[0].left))


def _union(a: TextRegion, b: TextRegion) -> TextRegion:
    return TextRegion(
        min(a.left, b.left), min(a.top, b.top), max(a.right, b.right), max(a.bottom, b.bottom)
    )


def _overlap(a: TextRegion, b: TextRegion) -> bool:
    return a.left < b.right and b.left < a.right and a.top < b.bottom and b.top < a.bottom
