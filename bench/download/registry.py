"""Every downloadable item in one table: where it comes from, what it yields, how it is checked.

Sources are listed in order of preference (docs/downloads.md). No hash of these
files is published, so `sha256` stays empty and the manifest records what was downloaded
(trust on first use); an entry given a `sha256` is held to it. Family helpers below fill in
what entries of one kind share, so each entry lists only what differs.
"""

import os
from dataclasses import dataclass, replace

from bench.common.errors import BenchError

GROUPS = ("coco", "f30k", "checkpoints")
ROOTS = ("data", "models", "nltk")
KINDS = ("checkpoint", "archive")


@dataclass(frozen=True)
class Source:
    """One place to fetch from: a Google Drive file id, a Drive folder id, or an http(s) URL."""

    kind: str  # "drive", "drive-folder" or "url"
    ref: str

    def describe(self) -> str:
        if self.kind == "drive":
            return f"https://drive.google.com/file/d/{self.ref}/view"
        if self.kind == "drive-folder":
            return f"https://drive.google.com/drive/folders/{self.ref}"
        return self.ref


@dataclass(frozen=True)
class Item:
    """A download and the files it yields under its root (`--data-root`, `--models-root`, NLTK)."""

    name: str
    description: str
    groups: tuple[str, ...]
    root: str
    filename: str  # the download's own name: mirrors serve `<URL>/<filename>`, --from looks for it
    sources: tuple[Source, ...]
    approx_bytes: int
    kind: str  # "checkpoint": a .pth.tar or an archive holding one; "archive": extract members
    # archive: (suffix of a member path inside the archive, destination relative to the root)
    members: tuple[tuple[str, str], ...] = ()
    optional: tuple[str, ...] = ()  # member suffixes that may be absent (nothing downstream needs them)
    check: str = ""  # structural check of the outputs: "scan", "vocab", "json", "punkt"
    # checkpoint: dataset and module per output, e.g. (("daa_coco_sgr.pth.tar", "coco_precomp", "SGR"),)
    checkpoints: tuple[tuple[str, str, str], ...] = ()
    feature_shape: tuple[int, int] = (36, 2048)
    expected_rows: tuple[tuple[str, int], ...] = ()  # (split, rows of {split}_ims.npy)
    vocab_sizes: tuple[tuple[str, int], ...] = ()  # (destination, entries)
    sha256: str = ""  # of the download, once published; until then the manifest's first record rules
    notes: str = ""  # what to tell a user who must fetch it by hand
    needed_for: tuple[str, ...] = ("eval", "train")  # what `--for` selects it
    size_known: bool = True  # False: approx_bytes is only a bound (the family's releases publish no sizes)
    published_layout: bool = True  # checked against DAA's published tensor schema (not the family's files)

    @property
    def member_limit(self) -> int:
        """The most bytes one archive member may unpack to: a member declaring more is refused
        before anything is written (a small archive must not fill the disk)."""
        return MEMBER_GROWTH * self.approx_bytes

    @property
    def outputs(self) -> tuple[str, ...]:
        """What must be present for the item to be ready (optional members left out)."""
        if self.kind == "checkpoint":
            return tuple(out for out, _, _ in self.checkpoints)
        return tuple(dest for suffix, dest in self.members if suffix not in self.optional)


STAND_IN_ENV = "BENCH_STAND_IN_DATA"
MEMBER_GROWTH = 4  # JSON and text compress about 3x; features and checkpoints hardly at all


def release_sizes_checked() -> bool:
    """Whether the released files' sizes are enforced: row counts, feature shape, vocabulary sizes,
    the checkpoints' published layout. `BENCH_STAND_IN_DATA=1` (a mirror of small stand-ins, as the
    test suite serves) keeps every other check: archive CRCs, consistency of each split's files,
    finite values, the checkpoint's dataset and module."""
    return os.environ.get(STAND_IN_ENV, "") in ("", "0")


def drive(file_id: str) -> Source:
    return Source("drive", file_id)


def url(address: str) -> Source:
    return Source("url", address)


SCAN_FOLDER = Source("drive-folder", "1os1Kr7HeTbh8FajBNegW8rjJf6GIhFqC")
SCAN_BLOB = "https://iudata.blob.core.windows.net/scan"
GB = 1 << 30
MB = 1 << 20


def _checkpoint(prefix: str, dataset: str, modules: tuple[str, ...], file_id: str, **fields) -> Item:
    """A checkpoint download: the `.pth.tar` itself or an archive; selected by `opt`, not by name."""
    short = dataset.split("_")[0]
    outputs = tuple((f"{prefix}_{short}_{m.lower()}.pth.tar", dataset, m) for m in modules)
    defaults = dict(
        groups=("checkpoints",), root="models", sources=(drive(file_id),), kind="checkpoint",
        checkpoints=outputs, filename=outputs[0][0] if len(outputs) == 1 else f"{prefix}_{short}_models.zip",
        approx_bytes=300 * MB * len(modules), needed_for=("eval",),
    )
    return Item(**{**defaults, **fields})


def _scan(dataset: str, group: str, splits: dict[str, int | None], ids_needed: tuple[str, ...] = (),
          **fields) -> Item:
    """One dataset's folder inside SCAN's data.zip; only its members are extracted.

    `{split}_ids.txt` is optional except for the splits in `ids_needed` (COCO testall: PMRP and
    ECCV Caption map rows to COCO images); nothing else reads image ids.
    """
    members = tuple((f"{dataset}/{split}_{part}", f"{dataset}/{split}_{part}")
                    for split in splits for part in ("ims.npy", "caps.txt", "ids.txt"))
    optional = tuple(f"{dataset}/{split}_ids.txt" for split in splits if split not in ids_needed)
    rows = tuple((split, n) for split, n in splits.items() if n is not None)
    defaults = dict(
        groups=(group,), root="data", filename="data.zip", sources=(url(f"{SCAN_BLOB}/data.zip"), SCAN_FOLDER),
        approx_bytes=34 * GB, kind="archive", members=members, optional=optional, check="scan", expected_rows=rows,
        notes="e.g. from the Kaggle dataset kuanghueilee/scan-features, which needs a Kaggle login",
    )
    return Item(name=f"scan-{group}", **{**defaults, **fields})


ITEMS: tuple[Item, ...] = (
    _checkpoint("daa", "coco_precomp", ("SGR",), "1hCiXyQBrYF7eP7JtNTaHQoqSZ18-mb2X",
                name="daa-coco-sgr", description="DAA COCO SGR checkpoint"),
    _checkpoint("daa", "coco_precomp", ("SAF",), "1o-Wch7pJMwOyf-RqEvsXgAUBhIO9fv8g",
                name="daa-coco-saf", description="DAA COCO SAF checkpoint"),
    _checkpoint("daa", "f30k_precomp", ("SGR",), "1Q0Ttw4yViWnupJA1whTAYGYHr-O56D4L",
                name="daa-f30k-sgr", description="DAA Flickr30K SGR checkpoint"),
    _checkpoint("daa", "f30k_precomp", ("SAF",), "1hvixWqDDCbkbBYK28dyZeEI6Nlc0qfAx",
                name="daa-f30k-saf", description="DAA Flickr30K SAF checkpoint"),
    _checkpoint("sgraf", "coco_precomp", ("SGR", "SAF"), "1SpuORBkTte_LqOboTgbYRN5zXhn4M7ag",
                name="sgraf-coco", description="SGRAF (no DAA) COCO SGR+SAF models and logs (archive)"),
    _checkpoint("sgraf", "f30k_precomp", ("SGR", "SAF"), "1OBRIn1-Et49TDu8rk0wgP0wKXlYRk4Uj",
                name="sgraf-f30k", description="SGRAF (no DAA) Flickr30K SGR+SAF models and logs (archive)"),
    _scan("coco_precomp", "coco", {"train": 113287, "dev": 5000, "test": None, "testall": 25000},
          ids_needed=("testall",), description="SCAN COCO features (coco_precomp from data.zip)"),
    _scan("f30k_precomp", "f30k", {"train": 29000, "dev": 5070, "test": 5000},
          description="SCAN Flickr30K features (f30k_precomp from data.zip)"),
    Item(name="scan-vocab", description="SCAN vocabularies (vocab.zip)", groups=("coco", "f30k"),
         root="data", filename="vocab.zip", sources=(url(f"{SCAN_BLOB}/vocab.zip"), SCAN_FOLDER),
         approx_bytes=1 * MB, kind="archive", check="vocab",
         members=(("coco_precomp_vocab.json", "vocab/coco_precomp_vocab.json"),
                  ("f30k_precomp_vocab.json", "vocab/f30k_precomp_vocab.json")),
         vocab_sizes=(("vocab/coco_precomp_vocab.json", 11353), ("vocab/f30k_precomp_vocab.json", 8481))),
    Item(name="coco-annotations", description="COCO 2014 caption and instance annotations (val)",
         groups=("coco",), root="data", filename="annotations_trainval2014.zip",
         sources=(url("http://images.cocodataset.org/annotations/annotations_trainval2014.zip"),),
         approx_bytes=241 * MB, kind="archive", check="json", needed_for=("eval",),
         members=(("annotations/captions_val2014.json", "coco_annotations/captions_val2014.json"),
                  ("annotations/instances_val2014.json", "coco_annotations/instances_val2014.json"))),
    # The address nltk.download('punkt_tab') itself fetches (NLTK's gh-pages index).
    Item(name="nltk-punkt-tab", description="NLTK punkt_tab sentence model (word_tokenize)",
         groups=("coco", "f30k"), root="nltk", filename="punkt_tab.zip",
         sources=(url("https://raw.githubusercontent.com/nltk/nltk_data/gh-pages/packages/tokenizers/punkt_tab.zip"),),
         approx_bytes=5 * MB, kind="archive", check="punkt",
         members=(("punkt_tab/english/collocations.tab", "tokenizers/punkt_tab/english/collocations.tab"),
                  ("punkt_tab/english/sent_starters.txt", "tokenizers/punkt_tab/english/sent_starters.txt"),
                  ("punkt_tab/english/abbrev_types.txt", "tokenizers/punkt_tab/english/abbrev_types.txt"),
                  ("punkt_tab/english/ortho_context.tab", "tokenizers/punkt_tab/english/ortho_context.tab"))),
)


def select(names: list[str], group: str | None, items: tuple[Item, ...] | None = None) -> list[Item]:
    """Items named or in `group` ("all" for every item); nothing asked means everything."""
    items = ITEMS if items is None else items
    table = {item.name: item for item in items}
    unknown = [name for name in names if name not in table]
    if unknown:
        raise BenchError(f"unknown item {', '.join(unknown)}; `python -m bench download --list` shows them")
    chosen = [table[name] for name in names]
    if group or not names:
        chosen += [item for item in items if group in (None, "all") or group in item.groups]
    return list(dict.fromkeys(chosen))


def split_of(dest: str) -> str:
    """`coco_precomp/testall_ims.npy` -> `testall`."""
    return dest.split("/")[-1].rsplit("_", 1)[0]


EVAL_SPLITS = {"coco_precomp": ("testall",), "f30k_precomp": ("test",)}  # what the paper's protocols read
TRAIN_SPLITS = ("train", "dev")
PURPOSES = ("eval", "train", "all")


def for_purpose(items: list[Item], purpose: str) -> list[Item]:
    """Only what evaluation reads (test splits, vocabularies, checkpoints, annotations, punkt_tab),
    or only what training reads (train and dev splits, vocabularies, punkt_tab); "all": everything."""
    if purpose == "all":
        return items
    chosen = []
    for item in items:
        if purpose not in item.needed_for:
            continue
        if item.check == "scan":
            dataset = item.members[0][1].split("/")[0]
            keep = EVAL_SPLITS[dataset] if purpose == "eval" else TRAIN_SPLITS
            item = replace(item, members=tuple(m for m in item.members if split_of(m[1]) in keep))
        chosen.append(item)
    return chosen


def with_splits(items: list[Item], splits: list[str] | None) -> list[Item]:
    """Restrict SCAN dataset items to the splits asked for (`--split`); drop those left empty."""
    if not splits:
        return items
    scan = [item for item in items if item.check == "scan"]
    known = {split_of(dest) for item in scan for _, dest in item.members}
    if set(splits) - known:
        raise BenchError(f"no split {', '.join(sorted(set(splits) - known))} in "
                         f"{', '.join(i.name for i in scan) or 'the chosen items'} (known: {', '.join(sorted(known))})")
    chosen = []
    for item in items:
        if item.check == "scan":
            item = replace(item, members=tuple(m for m in item.members if split_of(m[1]) in splits))
        if item.outputs:
            chosen.append(item)
    return chosen
