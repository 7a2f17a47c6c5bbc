"""A gallery in a Milvus collection, for galleries too large for one device or shared by many cameras.

    gallery = MilvusGallery.open("people.db", "site_a", bits=48)            # Milvus Lite, a local file
    gallery = MilvusGallery.open("http://milvus:19530", "all", bits=48, index="BIN_IVF_FLAT")
    gallery.add(packed_codes, ids, labels=names, site="cam-3")
    distances, ids = gallery.search(queries, k=5)                          # as HammingIndex.search

The result contract is HammingIndex's: int32 distances and int64 ids [nq, k], ordered by distance,
padded with -1 where the gallery holds fewer than k codes; ``range_search`` gives every code within
the radius. BIN_FLAT is exact; BIN_IVF_FLAT (a server's, not Milvus Lite's) is approximate: its
recall grows with ``nprobe``.

Codes are stored as BINARY_VECTOR of dim = 8 * ceil(bits / 8): dagh's packed rows, whose padding
bits are zero, so Hamming distances are unchanged (12 and 36 bits work). Every batch is validated
before it is sent (pymilvus silently shifts every row after one of the wrong byte length), and
sent in pieces under Milvus' 64 MB message limit. Ids are unique: ``add`` refuses ids the
collection holds.

Integrity: beside the collection the gallery keeps a record of what it committed, the count and an
order-free digest of the ids (for a Milvus Lite file, a JSON file beside it; on a server, a
one-row companion collection). Opening compares the collection with it (``verify=True`` reads
every id; ``verify=False`` the count only) and refuses a collection that shrank or changed.
pymilvus is imported when a gallery is opened (extra ``dagh[milvus]``).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from dagh.errors import ConfigError, DaghError, DataError

INDEXES = ("BIN_FLAT", "BIN_IVF_FLAT")
MAX_LIMIT = 16_384              # Milvus' largest k (and range-search page)
MESSAGE_BYTES = 48 << 20        # a batch's payload, under Milvus' 64 MB per insert
BATCH_ROWS = 50_000
LABEL_BYTES = 256
SITE_BYTES = 64
RECORD_SUFFIX = ".dagh-gallery.json"
CONSISTENCY = ("Bounded", "Strong", "Session", "Eventually")
# What dagh reads to check integrity (the count, the ids, the record) must be current: Strong. Searches use
# the gallery's level: Milvus' default Bounded answers at once from a view seconds old; Strong waits for
# the server's latest timestamp, about 200 ms a search on the standalone server measured here.
STRONG = {"consistency_level": "Strong"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")


SCHEME = "milvus:"


def parse_gallery_uri(spec: str) -> tuple[str, str] | None:
    """``milvus:URI#COLLECTION`` -> (URI, COLLECTION); None for anything else (a .dgal path).

    ``milvus:people.db#site_a`` is a Milvus Lite file; ``milvus:http://host:19530#all`` a server."""
    if not isinstance(spec, str) or not spec.startswith(SCHEME):
        return None
    uri, _, collection = spec[len(SCHEME):].rpartition("#")
    if not uri or not collection:
        raise ConfigError(f"{spec!r}: a Milvus gallery is milvus:URI#COLLECTION, e.g. milvus:people.db#site_a or "
                          "milvus:http://milvus:19530#all")
    return uri, collection


class MilvusGalleryError(DaghError):
    """A Milvus gallery is unreachable, corrupt, changed behind dagh's back, or was given bad data."""


def _id_digest(ids: np.ndarray) -> int:
    """An order-free digest of a set of ids: the XOR of each id's hash (so adds and removals update it)."""
    ids = np.asarray(ids, np.int64)
    if not len(ids):
        return 0
    mixed = ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    mixed ^= mixed >> np.uint64(31)
    mixed *= np.uint64(0xBF58476D1CE4E5B9)
    mixed ^= mixed >> np.uint64(29)
    return int(np.bitwise_xor.reduce(mixed))


class MilvusGallery:
    """Packed codes with unique ids, their people's names and sites, in one Milvus collection."""

    def __init__(self, client: Any, collection: str, bits: int, index: str, nprobe: int, record: _Record,
                 uri: str):
        self.client, self.collection, self.bits = client, collection, int(bits)
        self.index, self.nprobe, self._record, self.uri = index, int(nprobe), record, uri
        self.row_bytes = (self.bits + 7) // 8
        self.consistency = "Bounded"
        self.labels = _LabelCache(self)

    # -- opening ------------------------------------------------------------------------------------
    @classmethod
    def open(cls, uri: str | os.PathLike, collection: str, bits: int, *, index: str = "BIN_FLAT",
             nlist: int = 1024, nprobe: int = 16, create: bool = True, verify: bool = True,
             consistency: str = "Bounded") -> MilvusGallery:
        """Open (or, with ``create``, make) the gallery ``collection`` at ``uri``: a Milvus Lite file path
        (``people.db``) or a server (``http://host:19530``). ``consistency``: what searches see on a server
        (see CONSISTENCY; Milvus Lite is always current)."""
        if consistency not in CONSISTENCY:
            raise ConfigError(f"consistency must be one of {CONSISTENCY}, got {consistency!r}")
        from dagh._optional import require

        if not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 32768:
            raise ConfigError(f"bits must be an integer in 1..32768, got {bits!r}")
        if index not in INDEXES:
            raise ConfigError(f"index must be one of {INDEXES}, got {index!r}")
        if not isinstance(collection, str) or not _NAME.match(collection):
            raise ConfigError(f"collection name {collection!r}: letters, digits and _, not starting with a digit")
        uri = os.fspath(uri)
        local = "://" not in uri
        if local:
            _check_lite_file(Path(uri), create)
            if index != "BIN_FLAT":
                raise ConfigError("Milvus Lite (a local file) has BIN_FLAT only; BIN_IVF_FLAT needs a Milvus server")
        pymilvus = require("pymilvus", extra="milvus", purpose="a gallery on Milvus")
        try:
            client = pymilvus.MilvusClient(uri)
        except Exception as exc:  # pymilvus raises its own types, and OSError for a bad Lite file
            raise MilvusGalleryError(f"cannot open Milvus at {uri!r}: {_first_line(exc)}") from None
        record = _SidecarRecord(Path(uri), collection) if local else _CollectionRecord(client, collection)
        gallery = cls(client, collection, bits, index, nprobe, record, uri)
        gallery.consistency = consistency
        exists = gallery._call(client.has_collection, collection)
        if not exists:
            if record.read() is not None:
                raise MilvusGalleryError(f"collection {collection!r} at {uri!r} is gone but dagh's record says it "
                                         "held codes: the database was damaged or replaced; restore it, or delete "
                                         f"{record.where} and push the devices' .dgal files again")
            if not create:
                raise MilvusGalleryError(f"{uri!r} has no gallery {collection!r}")
            gallery._create(index, nlist)
            record.write({"bits": gallery.bits, "count": 0, "digest": 0})
        gallery._check(verify)
        return gallery

    def _create(self, index: str, nlist: int) -> None:
        from pymilvus import DataType

        client = self.client
        schema = client.create_schema(auto_id=False, description=f"dagh gallery, {self.bits}-bit codes")
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("code", DataType.BINARY_VECTOR, dim=8 * self.row_bytes)
        schema.add_field("label", DataType.VARCHAR, max_length=LABEL_BYTES)
        schema.add_field("site", DataType.VARCHAR, max_length=SITE_BYTES)
        params = client.prepare_index_params()
        extra = {"nlist": int(nlist)} if index == "BIN_IVF_FLAT" else {}
        params.add_index("code", index_type=index, metric_type="HAMMING", params=extra)
        self._call(client.create_collection, self.collection, schema=schema, index_params=params)

    def _check(self, verify: bool) -> None:
        """Refuse a collection that is not what dagh committed: another code length, shrunk, changed."""
        record = self._record.read()
        where = f"gallery {self.collection!r} at {self.uri!r}"
        if record is None:
            raise MilvusGalleryError(f"{where} has no dagh record ({self._record.where}): it was not made by dagh, "
                                     "or its record was lost; push the devices' .dgal files into a new collection")
        if record["bits"] != self.bits:
            raise MilvusGalleryError(f"{where} holds {record['bits']}-bit codes, not {self.bits}-bit")
        count = len(self)
        pending = record.get("pending")
        if pending is not None:  # a change was under way: settle it by what the collection holds
            if count == pending["count"] and (not verify or _id_digest(self.ids()) == pending["digest"]):
                record = {"bits": record["bits"], **pending}
            else:
                record = {key: record[key] for key in ("bits", "count", "digest")}
            self._record.write(record)
        if count != record["count"]:
            raise MilvusGalleryError(
                f"{where} holds {count} codes but dagh committed {record['count']}: the database lost or gained "
                "rows behind dagh's back; restore it from a backup, or re-push the devices' .dgal files")
        if verify and _id_digest(self.ids()) != record["digest"]:
            raise MilvusGalleryError(f"{where} holds other ids than dagh committed (same count): restore it from "
                                     "a backup, or re-push the devices' .dgal files")

    # -- the verbs ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        rows = self._call(self.client.query, self.collection, filter="", output_fields=["count(*)"], **STRONG)
        return int(rows[0]["count(*)"])

    def ids(self) -> np.ndarray:
        """Every id in the collection (read page by page)."""
        return np.asarray([row["id"] for row in self._rows(["id"])], np.int64)

    def rows(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Everything in the collection, ordered by id: (packed codes, ids, labels)."""
        rows = sorted(self._rows(["id", "code", "label"]), key=lambda row: row["id"])
        return (np.asarray([np.frombuffer(_code_bytes(r["code"]), np.uint8) for r in rows], np.uint8)
                .reshape(len(rows), self.row_bytes), np.asarray([r["id"] for r in rows], np.int64),
                [r["label"] for r in rows])

    def fetch(self, ids: np.ndarray) -> dict[int, bytes]:
        """The packed code of each of ``ids`` the collection holds."""
        return {int(row["id"]): _code_bytes(row["code"]) for row in self._by_ids(ids, ["id", "code"])}

    def holding(self, ids: np.ndarray) -> np.ndarray:
        """Which of ``ids`` the collection holds (sorted)."""
        return np.asarray(sorted(row["id"] for row in self._by_ids(ids, ["id"])), np.int64)

    def _by_ids(self, ids: np.ndarray, fields: list[str]) -> list[dict]:
        """The rows of ``ids`` the collection holds, asked in pages of MAX_LIMIT ids (Strong: current)."""
        ids = np.asarray(ids, np.int64).reshape(-1)
        rows = []
        for start in range(0, len(ids), MAX_LIMIT):
            chunk = ", ".join(str(int(i)) for i in ids[start:start + MAX_LIMIT])
            rows.extend(self._call(self.client.query, self.collection, filter=f"id in [{chunk}]",
                                   output_fields=fields, **STRONG))
        return rows

    def _rows(self, fields: list[str]) -> list[dict]:
        out = []
        iterator = self._call(self.client.query_iterator, self.collection, batch_size=MAX_LIMIT, filter="",
                              output_fields=fields, **STRONG)
        while True:
            page = iterator.next()
            if not page:
                break
            out.extend(page)
        iterator.close()
        return out

    def add(self, codes: np.ndarray, ids: np.ndarray, labels: list[str] | None = None,
            site: str = "") -> None:
        """Insert packed ``codes`` with unique new ``ids`` (and their people's names, a site name)."""
        codes, ids = self._checked(codes, ids)
        labels = [""] * len(ids) if labels is None else [str(v) for v in labels]
        if len(labels) != len(ids):
            raise DataError(f"{len(ids)} codes but {len(labels)} labels")
        _check_site(site, DataError)
        for value, limit, what in [(v, LABEL_BYTES, "label") for v in labels] + [(site, SITE_BYTES, "site")]:
            if len(value.encode("utf-8")) > limit:
                raise DataError(f"{what} {value[:40]!r}... is longer than {limit} bytes of UTF-8")
        if not len(ids):
            return
        present = self.holding(ids) if len(self) else ids[:0]  # into an empty collection: nothing to ask
        if len(present):
            raise DataError(f"ids {present[:5].tolist()} are in gallery {self.collection!r} already: an id names "
                            "one code (push skips the ones it holds)")
        per_row = self.row_bytes + 8 + max(len(v.encode()) for v in labels) + len(site.encode()) + 64
        # under the 64 MB message limit, and at most BATCH_ROWS (pymilvus 3 inserts 1M codes in ~25 s so)
        step = max(1, min(MESSAGE_BYTES // per_row, BATCH_ROWS))
        for start in range(0, len(ids), step):
            part = slice(start, start + step)
            rows = [{"id": int(i), "code": c.tobytes(), "label": label, "site": site}
                    for i, c, label in zip(ids[part], codes[part], labels[part])]
            self._commit(+len(rows), _id_digest(ids[part]), lambda rows=rows: self._call(
                self.client.insert, self.collection, rows))

    def remove(self, ids: np.ndarray | list[int]) -> int:
        """Delete the codes whose id is in ``ids``; returns how many there were."""
        ids = np.asarray(ids).reshape(-1)
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            raise DataError(f"ids must be integers, got {ids.dtype}")
        present = self.holding(ids.astype(np.int64))
        if len(present):
            self._commit(-len(present), _id_digest(present), lambda: self._call(
                self.client.delete, self.collection, ids=[int(i) for i in present]))
        return len(present)

    def _commit(self, change: int, digest: int, write) -> None:
        """Change the collection by ``write()`` under a two-phase record: first what it will be
        (``pending``), then, once Milvus took it, that as committed. A kill in between leaves a record
        the next open settles by what the collection holds: the state before, or the state after."""
        record = self._record.read()
        after = {"count": record["count"] + change, "digest": record["digest"] ^ digest}
        self._record.write({**record, "pending": after})
        write()
        self._record.write({"bits": record["bits"], **after})

    def search(self, queries: np.ndarray, k: int, *, site: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest codes of each query: (distances int32 [nq, k], ids int64 [nq, k]), -1 padded.

        ``site``: only codes added with that site (a camera, a building)."""
        if not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_LIMIT:
            raise ConfigError(f"k must be an integer in 1..{MAX_LIMIT} (Milvus' limit), got {k!r}")
        queries = self._packed(queries, "queries")
        distances = np.full((len(queries), int(k)), -1, np.int32)
        ids = np.full((len(queries), int(k)), -1, np.int64)
        if not len(queries):
            return distances, ids
        hits = self._search(queries, int(k), {"metric_type": "HAMMING", "params": {"nprobe": self.nprobe}}, site)
        for row, found in enumerate(hits):
            for col, hit in enumerate(found):
                distances[row, col], ids[row, col] = int(hit["distance"]), int(hit["id"])
                self.labels.remember(int(hit["id"]), hit["entity"].get("label"))
        return distances, ids

    def range_search(self, queries: np.ndarray, radius: int, *,
                     site: str | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every code within ``radius`` bits of each query, nearest first (``site``: as in search)."""
        if not isinstance(radius, (int, np.integer)) or radius < 0:
            raise ConfigError(f"radius must be a non-negative integer, got {radius!r}")
        queries = self._packed(queries, "queries")
        if not len(queries):
            return []
        # Milvus keeps range_filter <= d < radius: one more than ours, which includes the radius
        params = {"metric_type": "HAMMING", "params": {"nprobe": self.nprobe, "radius": int(radius) + 1,
                                                       "range_filter": 0}}
        out = []
        for found in self._search(queries, MAX_LIMIT, params, site):
            if len(found) >= MAX_LIMIT:
                raise MilvusGalleryError(f"{MAX_LIMIT} or more codes lie within {radius} bits of a query (Milvus' "
                                         "limit per search): use a smaller radius, or search(k=...)")
            out.append((np.asarray([int(h["distance"]) for h in found], np.int32),
                        np.asarray([int(h["id"]) for h in found], np.int64)))
        return out

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> MilvusGallery:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- helpers ------------------------------------------------------------------------------------
    def _search(self, queries: np.ndarray, limit: int, params: dict, site: str | None = None) -> list:
        where = ""
        if site is not None:
            _check_site(site, ConfigError)
            where = f'site == "{site}"'
        return self._call(self.client.search, self.collection, data=[q.tobytes() for q in queries], limit=limit,
                          filter=where, output_fields=["label"], search_params=params, anns_field="code",
                          consistency_level=self.consistency)

    def _packed(self, codes: np.ndarray, name: str) -> np.ndarray:
        """Packed uint8 rows (or +1/-1 codes [n, bits], packed here), checked: the byte length, zero padding."""
        codes = np.asarray(codes)
        if codes.ndim == 1:
            codes = codes[None]
        if codes.ndim == 2 and codes.shape[1] == self.bits != self.row_bytes:
            from dagh.runtime.bits import pack_codes

            codes = pack_codes(codes > 0)
        if codes.dtype != np.uint8 or codes.ndim != 2 or codes.shape[1] != self.row_bytes:
            raise DataError(f"{name} must be packed uint8 rows [n, {self.row_bytes}] (or +1/-1 codes [n, {self.bits}]) "
                            f"for this {self.bits}-bit gallery, got {codes.dtype} {codes.shape}")
        if self.bits % 8:  # padding bits must be zero, or distances would count them
            mask = np.uint8((0xFF << (8 - self.bits % 8)) & 0xFF)
            if np.any(codes[:, -1] & ~mask):
                raise DataError(f"{name}: the {8 - self.bits % 8} padding bits of the last byte must be zero")
        return np.ascontiguousarray(codes)

    def _checked(self, codes: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        codes = self._packed(codes, "codes")
        ids = np.asarray(ids).reshape(-1)
        if len(ids) != len(codes):
            raise DataError(f"{len(codes)} codes but {len(ids)} ids")
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            raise DataError(f"ids must be integers, got {ids.dtype}")
        ids = ids.astype(np.int64)
        if len(np.unique(ids)) != len(ids):
            raise DataError("ids repeat within the batch: an id names one code")
        return codes, ids

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DaghError:
            raise
        except Exception as exc:  # pymilvus' MilvusException, gRPC errors
            raise MilvusGalleryError(f"Milvus at {self.uri!r} ({getattr(fn, '__name__', 'call')} on "
                                     f"{self.collection!r}): {_first_line(exc)}") from None


class _LabelCache:
    """The names of ids the searches returned (and, on a miss, one query): ``get(id)`` as a dict's."""

    def __init__(self, gallery: MilvusGallery, size: int = 100_000):
        self._gallery, self._names, self._size = gallery, {}, size

    def remember(self, id_: int, label: str | None) -> None:
        if len(self._names) >= self._size:
            self._names.clear()
        self._names[id_] = label or None

    def get(self, id_: int, default=None):
        if id_ not in self._names:
            rows = self._gallery._by_ids(np.asarray([id_]), ["label"])
            self.remember(int(id_), rows[0]["label"] if rows else None)
        name = self._names.get(id_)
        return default if name is None else name

    def __bool__(self) -> bool:
        return True


class _Record:
    where = ""

    def read(self) -> dict | None:
        raise NotImplementedError

    def write(self, record: dict) -> None:
        raise NotImplementedError


class _SidecarRecord(_Record):
    """For a Milvus Lite file: ``<file>.dagh-gallery.json`` beside it, one entry per collection."""

    def __init__(self, db: Path, collection: str):
        self.path, self.collection = Path(f"{db}{RECORD_SUFFIX}"), collection
        self.where = str(self.path)

    def _all(self) -> dict:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise MilvusGalleryError(f"{self.path} is unreadable ({exc}): restore it, or delete it and the "
                                     "database and push the devices' .dgal files again") from None
        if not isinstance(data, dict):
            raise MilvusGalleryError(f"{self.path} is not a dagh gallery record")
        return data

    def read(self) -> dict | None:
        entry = self._all().get(self.collection)
        return _valid_record(entry, self.where)

    def write(self, record: dict) -> None:
        from dagh.fileio import atomic_write_text

        data = self._all()
        data[self.collection] = record
        atomic_write_text(self.path, json.dumps(data, indent=1, sort_keys=True))


class _CollectionRecord(_Record):
    """On a server: a one-row companion collection ``<collection>__dagh``."""

    def __init__(self, client: Any, collection: str):
        self.client, self.name = client, f"{collection}__dagh"
        self.where = f"collection {self.name!r}"

    def read(self) -> dict | None:
        if not self.client.has_collection(self.name):
            return None
        rows = self.client.query(self.name, filter="key == 'record'", output_fields=["value"], **STRONG)
        return _valid_record(json.loads(rows[0]["value"]) if rows else None, self.where)

    def write(self, record: dict) -> None:
        from pymilvus import DataType

        if not self.client.has_collection(self.name):
            schema = self.client.create_schema(auto_id=False, description="dagh gallery record")
            schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=16)
            schema.add_field("value", DataType.VARCHAR, max_length=1024)
            schema.add_field("unused", DataType.BINARY_VECTOR, dim=8)  # Milvus wants a vector field
            params = self.client.prepare_index_params()
            params.add_index("unused", index_type="BIN_FLAT", metric_type="HAMMING")
            self.client.create_collection(self.name, schema=schema, index_params=params)
        self.client.upsert(self.name, [{"key": "record", "value": json.dumps(record), "unused": b"\0"}])


def _valid_record(entry: Any, where: str) -> dict | None:
    if entry is None:
        return None
    if not (isinstance(entry, dict) and all(isinstance(entry.get(k), int) for k in ("bits", "count", "digest"))):
        raise MilvusGalleryError(f"the dagh record in {where} is malformed: restore it, or re-push the galleries")
    return entry


def _check_lite_file(path: Path, create: bool) -> None:
    """A Milvus Lite file that exists must look like one: a 0-byte file opens as an empty database."""
    if path.exists():
        if path.is_dir():
            raise MilvusGalleryError(f"{str(path)!r} is a directory, not a Milvus Lite database file")
        if path.stat().st_size == 0:
            raise MilvusGalleryError(f"Milvus Lite database {str(path)!r} is empty (0 bytes): it was truncated; "
                                     "restore it, or delete it to start an empty gallery")
    elif not create:
        raise MilvusGalleryError(f"Milvus Lite database {str(path)!r} does not exist")


def _check_site(site: Any, error: type[DaghError]) -> None:
    """A site name is also put into filter expressions: only characters that cannot end the string."""
    if not isinstance(site, str) or not re.fullmatch(r"[\w.:@/ -]{0,64}", site):
        raise error(f"site {site!r}: up to 64 letters, digits and . : @ / - _ or spaces")


def _code_bytes(value: Any) -> bytes:
    """pymilvus returns a binary vector as bytes or as a list of one bytes."""
    return bytes(value[0] if isinstance(value, list) else value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
