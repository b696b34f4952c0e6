"""ECCV Caption and CxC metrics of a COCO 5K score matrix, through PyPI's `eccv_caption`.

The package ships its annotations (no network at run time) and takes ranked id lists:
`{image id: [caption ids, best first]}` and `{caption id: [image ids, best first]}`. Its COCO
1K/5K recalls are recomputed here from the same matrix by bench.eval.metrics and must agree,
which proves the row/column -> COCO id mapping (bench.data.coco_ids) before any ECCV figure is
trusted. Figures are returned in percent under the results' metric names.
Deviation, on purpose: the package asks for rankings of the whole 5K gallery (250 M ids as
Python lists); we pass each query only the prefix the package reads, plus the top 10 of its
COCO 1K fold, which gives identical figures (tests compare both) in seconds.

    python -c "from bench.eval.eccv import library_version; print(library_version())"
"""

import contextlib
import io
import warnings
from importlib import metadata

import numpy as np

from bench.common.errors import BenchError
from bench.data.coco_ids import CocoIdMap, build_id_map, load_caption_ids
from bench.data.coco_ids import caption_ids_path as caption_ids_path_of
from bench.eval.metrics import RECALL_KS, recall_metrics
from bench.eval.protocol_metrics import mean_metrics
from bench.eval.protocols import DIRECTIONS, fold_blocks, fold_of, fold_slice, get_protocol

PACKAGE = "eccv_caption"
COCO_1K = get_protocol("coco-1k")
# eccv_rprecision is only computed when eccv_map_at_r is asked for too (the package checks a
# misspelt name), so both are always requested.
TARGETS = ("coco_1k_recalls", "coco_5k_recalls", "cxc_recalls",
           "eccv_map_at_r", "eccv_rprecision", "eccv_r1")
REPORTED = ("eccv_map_at_r", "eccv_rprecision", "eccv_r1") + tuple(f"cxc_r{k}" for k in RECALL_KS)
AGREEMENT = 1e-6  # percent: both sides count the same queries, so only rounding may differ


def new_library():
    """A fresh `eccv_caption.Metrics` loaded with the packaged ECCV, CxC and COCO annotations."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # it warns when the optional ujson is absent
            import eccv_caption
    except ImportError as err:
        raise BenchError("ECCV Caption / CxC metrics need the `eccv_caption` package: "
                         "pip install eccv_caption (or pip install -e '.[eccv]')") from err
    return eccv_caption.Metrics()


def library_version() -> str:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError as err:
        raise BenchError(f"{PACKAGE} is not installed: pip install {PACKAGE}") from err


def _stable_best(values: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` highest values, best first, equal values by lower index."""
    if count >= values.size:
        return np.argsort(-values, kind="stable")
    cutoff = np.partition(values, values.size - count)[values.size - count]
    candidates = np.flatnonzero(values >= cutoff)
    return candidates[np.lexsort((candidates, -values[candidates]))][:count]


def _ranked_lists(scores: np.ndarray, query_ids: np.ndarray, gallery_ids: np.ndarray,
                  depth: int | None) -> dict[int, list[int]]:
    """Per query: gallery ids best first; with `depth`, only what the package will read.

    That is the global top `depth` plus the top `max(RECALL_KS)` of the query's own COCO 1K
    fold (the package filters the 5K list by fold for its 1K recalls), merged in global
    order: every metric it computes then sees exactly what the full list would give it.
    """
    n_queries, n_gallery = scores.shape
    lists = {}
    for start in range(0, n_queries, 1024):
        block = np.ascontiguousarray(scores[start:start + 1024])
        for offset, row in enumerate(block):
            query = start + offset
            if depth is None:
                ranked = _stable_best(row, n_gallery)
            else:
                span = fold_slice(COCO_1K, fold_of(COCO_1K, query, n_queries), n_gallery)
                own_fold = span.start + _stable_best(row[span], max(RECALL_KS))
                chosen = np.union1d(_stable_best(row, depth), own_fold)
                ranked = chosen[np.lexsort((chosen, -row[chosen]))]
            lists[int(query_ids[query])] = gallery_ids[ranked].tolist()
    return lists


def ranked_lists(sims: np.ndarray, id_map: CocoIdMap, depth: int | None = None) -> tuple[dict, dict]:
    """(i2t, t2i) ranked id lists in the package's input format; depth None = whole gallery."""
    i2t = _ranked_lists(sims, id_map.image_ids, id_map.caption_ids, depth)
    t2i = _ranked_lists(sims.T, id_map.caption_ids, id_map.image_ids, depth)
    return i2t, t2i


def _annotation_sets(library) -> list[dict]:
    return [library.coco_gts, library.cxc_gts, library.eccv_gts]


def _list_depth(library) -> int:
    """The longest prefix any of the package's metrics reads: R for R-precision, K for R@K."""
    longest = max(len(items) for gts in _annotation_sets(library)
                  for direction in gts.values() for items in direction.values())
    return max(longest, max(RECALL_KS))


def _check_coverage(library, id_map: CocoIdMap) -> None:
    """Every annotated query must be a row (i2t) or column (t2i) of the matrix.

    Positives are not checked: ECCV Caption's own annotations name 2 caption ids that are
    not among the 25,000 test captions; they simply can never be retrieved.
    """
    known = {"i2t": set(id_map.image_ids.tolist()), "t2i": set(id_map.caption_ids.tolist())}
    for gts in _annotation_sets(library):
        for direction, annotated in gts.items():
            missing = set(annotated) - known[direction]
            if missing:
                raise BenchError(f"ECCV Caption needs the whole COCO 5K test set in SCAN's testall "
                                 f"order: {len(missing)} annotated {direction} ids (e.g. "
                                 f"{min(missing)}) are not in the score matrix")


def _our_recalls(sims: np.ndarray) -> dict:
    """Our COCO 5K and 1K (mean over folds) recalls, keyed like the package's output."""
    five_k = recall_metrics(sims)
    one_k = mean_metrics([recall_metrics(block) for block in fold_blocks(COCO_1K, sims)])
    return {f"coco_{name}_r{k}": {d: source[d][f"r{k}"] for d in DIRECTIONS}
            for name, source in (("5k", five_k), ("1k", one_k)) for k in RECALL_KS}


def _cross_check(theirs: dict, ours: dict) -> float:
    """Largest disagreement (percent) of the package's COCO recalls with ours; raise if real."""
    worst = 0.0
    for key, directions in ours.items():
        for direction, value in directions.items():
            difference = abs(100.0 * theirs[key][direction] - value)
            if difference > AGREEMENT:
                raise BenchError(f"eccv_caption's {key} {direction} = {100 * theirs[key][direction]:.3f} "
                                 f"but ours = {value:.3f}: the SCAN row -> COCO id mapping is wrong")
            worst = max(worst, difference)
    return worst


def eccv_metrics(sims: np.ndarray, id_map: CocoIdMap, library=None) -> dict:
    """{"i2t": {eccv_*, cxc_r*}, "t2i": {...}} in percent, plus the package version and the
    cross-check's largest difference; `sims` is the (5,000 x 25,000) COCO 5K matrix."""
    sims = np.asarray(sims)
    if sims.shape != (id_map.image_ids.size, id_map.caption_ids.size):
        raise BenchError(f"ECCV Caption: score matrix of shape {sims.shape} does not match "
                         f"{id_map.image_ids.size} image ids and {id_map.caption_ids.size} caption ids")
    library = library or new_library()
    library.coco_ids = id_map.caption_ids  # its 1K folds then follow our caption order
    _check_coverage(library, id_map)
    i2t, t2i = ranked_lists(sims, id_map, depth=_list_depth(library))
    with contextlib.redirect_stderr(io.StringIO()):  # it draws tqdm bars unconditionally
        scores = library.compute_all_metrics(i2t, t2i, target_metrics=TARGETS, Ks=RECALL_KS,
                                             verbose=False)
    worst = _cross_check(scores, _our_recalls(sims))
    result = {d: {name: float(100.0 * scores[name][d]) for name in REPORTED} for d in DIRECTIONS}
    result.update(library=f"{PACKAGE} {library_version()}", recall_agreement=float(worst))
    return result


def testall_eccv_metrics(sims: np.ndarray, image_ids, caption_ids_path=None, library=None) -> dict:
    """eccv_metrics for SCAN's COCO testall: `image_ids` per image row (the split's ids), caption
    ids from eccv_caption's coco_test_ids.npy (or the given file), every caption checked to
    belong to its row's image against the package's COCO annotations."""
    library = library or new_library()
    owners = {caption: images[0] for caption, images in library.coco_gts["t2i"].items()}
    path = caption_ids_path_of(caption_ids_path)
    id_map = build_id_map(np.asarray(image_ids, dtype=np.int64), load_caption_ids(path), owners,
                          source=f"{path} (against the split's image ids)")
    return eccv_metrics(sims, id_map, library)
