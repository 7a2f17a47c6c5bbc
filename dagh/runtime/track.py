"""A small face tracker for video: boxes matched across frames by IoU, names voted over recent frames.

One frame's decision can flicker (a blink, a turn of the head moves a code by a
few bits across the radius). The tracker gives each face a track id, keeps the
decisions of its last ``window`` frames, and reports the one most of them
agree on: a name once at least half the window named it, else unknown. Unusable
frames do not vote. Feed it one camera's frames in order.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, deque

from dagh.runtime.face.detect import box_iou


@dataclasses.dataclass
class _Track:
    box: tuple[float, float, float, float]
    votes: deque
    missed: int = 0


class Tracker:
    """IoU tracker with a vote over the last ``window`` decisions of each track.

    ``iou``: the least overlap with a track's last box for a face to continue it. Defaults to 0.3.
    ``window``: decisions voted over. Defaults to 5. ``max_missed``: frames a track survives unseen.
    Defaults to 10.
    """

    def __init__(self, iou: float = 0.3, window: int = 5, max_missed: int = 10):
        self.iou, self.window, self.max_missed = iou, window, max_missed
        self.tracks: dict[int, _Track] = {}
        self._next = 0

    def update(self, matches: list) -> list:
        """The frame's matches with ``track`` set and known/name/id replaced by the track's vote."""
        free = set(self.tracks)
        out = []
        for match in sorted(matches, key=lambda m: -m.score):
            best = max(free, key=lambda t: box_iou(self.tracks[t].box, match.box), default=None)
            if best is None or box_iou(self.tracks[best].box, match.box) < self.iou:
                best, self._next = self._next, self._next + 1
                self.tracks[best] = _Track(match.box, deque(maxlen=self.window))
            else:
                free.discard(best)
            track = self.tracks[best]
            track.box, track.missed = match.box, 0
            if match.usable:
                track.votes.append((match.name, match.id) if match.known else None)
            out.append(self._voted(match, best, track))
        for t in free:
            self.tracks[t].missed += 1
            if self.tracks[t].missed > self.max_missed:
                del self.tracks[t]
        return out

    def _voted(self, match, track_id: int, track: _Track):
        if not match.usable or not track.votes:
            return dataclasses.replace(match, track=track_id)
        winner, count = Counter(track.votes).most_common(1)[0]
        known = winner is not None and count * 2 >= len(track.votes)
        name, ident = winner if known else (match.name, match.id)
        return dataclasses.replace(match, track=track_id, known=known, name=name, id=ident)
