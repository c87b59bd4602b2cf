"""The content-addressed tensor store, usable on its own.

    from weightbase.tensors import TensorStore, WriteStats
    store = TensorStore.open("./store")
    stats = WriteStats()                        # the caller's own: safe across threads
    snapshot = store.write(state_dict, ref="my-model", stats=stats)
    stats.new_bytes, stats.reused_chunks        # what this write stored and shared
    weights = store.read(snapshot)

Knows bytes, dtypes, shapes, chunks, codecs, digests and object stores;
nothing of SQL, HTTP or models.
"""

from weightbase.tensors.formats import export_path, import_path
from weightbase.tensors.maintenance import FsckReport, GcReport
from weightbase.tensors.manifest import ChunkRef, FileEntry, Snapshot, TensorEntry
from weightbase.tensors.sources import TensorSource
from weightbase.tensors.store import Sharing, TensorStore
from weightbase.tensors.write import FileSource, WriteOptions, WriteStats

__all__ = [
    "ChunkRef",
    "FileEntry",
    "FileSource",
    "FsckReport",
    "GcReport",
    "Sharing",
    "Snapshot",
    "TensorEntry",
    "TensorSource",
    "TensorStore",
    "WriteOptions",
    "WriteStats",
    "export_path",
    "import_path",
]
