"""The family's plain-HTTPS releases as download items: NCR's seven checkpoints and its data archive.

The other methods' releases are Google Drive or OneDrive folders whose file names are unconfirmed
(bench.family.releases): the Drive folders are fetched whole with gdown (bench.download.family_drive),
and `download --family <method> --from DIR` takes a folder fetched by hand (bench.download.family_import).
See docs/family.md.
"""

from bench.download.registry import GB, Item, url
from bench.family.releases import NCR_DATA, RELEASES

FAMILY_ROOT = "family"  # under the models root: family/<method>/<file>


def _checkpoint_item(release) -> Item:
    output = f"{FAMILY_ROOT}/{release.key}/{release.file}"
    return Item(name=f"{release.key}-{release.dataset.split('_')[0]}-{release.noise}",
                description=f"{release.paper} checkpoint ({release.dataset}, noise {release.noise}; {release.licence})",
                groups=("family",), root="models", filename=release.file, sources=(url(release.location),),
                approx_bytes=1 * GB, kind="checkpoint", checkpoints=((output, release.dataset, "SGR"),),
                needed_for=("eval",), size_known=False, published_layout=False)


NCR_DATA_ITEM = Item(
    name="ncr-data-cc152k", description="NCR's data archive: CC152K's test split and vocabulary (only those are "
    "extracted; the archive's member list is unconfirmed, members are found by their path's ending)",
    groups=("family",), root="data", filename="NCR-data.tar", sources=(url(NCR_DATA),), approx_bytes=64 * GB,
    kind="archive", members=(("cc152k_precomp/test_caps.tsv", "cc152k_precomp/test_caps.tsv"),
                             ("cc152k_precomp/test_ims.npy", "cc152k_precomp/test_ims.npy"),
                             ("cc152k_precomp_vocab.json", "vocab/cc152k_precomp_vocab.json")),
    needed_for=("eval",), size_known=False)

FAMILY_ITEMS = tuple(_checkpoint_item(r) for r in RELEASES if r.host == "https") + (NCR_DATA_ITEM,)
ITEM_METHOD = {item.name: item.name.split("-")[0] for item in FAMILY_ITEMS}


def family_items(family: str) -> list[Item]:
    """NCR's items for `ncr` or `all` (the data archive with them: CC152K needs it); none for the others."""
    return [item for item in FAMILY_ITEMS if family in ("all", ITEM_METHOD[item.name])]
