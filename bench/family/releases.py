"""One entry per released file of the family's methods: where it is, what it is, what is not confirmed.

Facts were read from each method's public repository at the commit named in `source`. Where a
repository does not say (a Drive folder whose contents are not listed publicly, a paper's table not
at hand), the entry says UNCONFIRMED instead of guessing a name, a size or a figure (docs/family.md).
"""

from dataclasses import dataclass

UNCONFIRMED = "UNCONFIRMED"
METHODS = ("ncr", "cream", "sps", "l2rm", "bicro")
NCR_MODELS = "https://ncr-paper.cdn.bcebos.com/models/"
NCR_DATA = "https://ncr-paper.cdn.bcebos.com/data/NCR-data.tar"


@dataclass(frozen=True)
class Release:
    """A released checkpoint file (or a folder of them, where its file names are unconfirmed)."""

    method: str  # display name: NCR, CREAM, SPS, L2RM, BiCro
    paper: str
    file: str  # the file's name, or UNCONFIRMED (a folder's contents)
    dataset: str  # opt.data_name: f30k_precomp, coco_precomp, cc152k_precomp; "" where unconfirmed
    noise: str  # the noise ratio it was trained at ("0", "0.2", ...; "real" for CC152K), or UNCONFIRMED
    host: str  # "https", "drive-folder" or "onedrive" (by hand, then --from)
    location: str  # URL, Drive folder id or OneDrive link
    licence: str
    source: str  # repository@commit the facts were read from
    size: int | None = None  # bytes; None: unknown

    @property
    def key(self) -> str:
        return self.method.lower()

    @property
    def target(self) -> str | None:
        """`reproduce-<method>-<dataset>-<noise>`, for a file whose name and noise are confirmed."""
        if UNCONFIRMED in (self.file, self.noise):
            return None
        return f"reproduce-{self.key}-{self.dataset.split('_')[0]}-{self.noise}"

    @property
    def protocols(self) -> tuple[str, ...]:
        return {"f30k_precomp": ("f30k-1k",), "coco_precomp": ("coco-1k", "coco-5k"),
                "cc152k_precomp": ("cc152k-1k",)}.get(self.dataset, ())


def _ncr(dataset: str, noise: str) -> Release:
    name = f"ncr_{dataset}_{noise}_model_best.pth.tar" if dataset != "cc152k" else "ncr_cc152k_model_best.pth.tar"
    return Release("NCR", "NCR (NeurIPS 2021)", name, f"{dataset}_precomp", noise, "https", NCR_MODELS + name,
                   "MIT (LICENSE file; its README says Apache-2.0)", "XLearning-SCU/2021-NeurIPS-NCR@60256ba")


def _folder(method: str, paper: str, folder: str, licence: str, source: str, host: str = "drive-folder") -> Release:
    return Release(method, paper, UNCONFIRMED, "", UNCONFIRMED, host, folder, licence, source)


RELEASES = (
    *(_ncr(dataset, noise) for dataset in ("f30k", "coco") for noise in ("0", "0.2", "0.5")),
    _ncr("cc152k", "real"),
    _folder("CREAM", "CREAM (TIP 2024)", "1-OFZ4k1x2F0d0tgBznffNQf1aoRRvDT6", "Apache-2.0 (LICENSE file)",
            "XLearning-SCU/2024-TIP-CREAM@f487d6f"),
    _folder("SPS", "SPS (IJCAI 2025)", "1SuudNBWTCcetkYFAW9Ha84tX8SCF8zZF", "MIT (README badge; no LICENSE file)",
            "C-TeaRanger/SPS@b985abe"),
    _folder("L2RM", "L2RM (CVPR 2024)", "1NSEoPaZa3kkxKt3jI83aWDDOax-5IGvD", "Apache-2.0 (README only)",
            "hhc1997/L2RM@a766c22"),
    *(Release("BiCro", "BiCro (CVPR 2023)", UNCONFIRMED, "f30k_precomp", noise, "onedrive", link,
              "Apache-2.0 (README only)", "xu5zhao/BiCro@0231631")
      for noise, link in (("0.2", "https://1drv.ms/f/s!At35ksCBMmxRjDu0KWs2U_2p0ZQU"),
                          ("0.4", "https://1drv.ms/f/s!At35ksCBMmxRi3HSoV-3qOx2KRZC"),
                          ("0.6", "https://1drv.ms/f/s!At35ksCBMmxRjDyUgPjrIbbwdR5a"))),
)
METHOD_NAMES = {release.key: release.method for release in RELEASES}


def select(family: str) -> list[Release]:
    """The releases of one method (ncr, cream, sps, l2rm, bicro) or of all."""
    return [r for r in RELEASES if family == "all" or r.key == family]


def by_file(name: str) -> Release | None:
    """The release with this confirmed file name."""
    return next((r for r in RELEASES if r.file == name), None)
