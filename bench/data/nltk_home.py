"""Where NLTK's punkt_tab lives: under the data root unless $NLTK_DATA says otherwise.

Kept apart from `vocab` so that `download` can name the folder without importing NLTK.
"""

import os
from pathlib import Path

NLTK_SUBDIR = "nltk_data"


def nltk_home(data_root: str | Path) -> Path:
    """$NLTK_DATA's first folder if set, else <data root>/nltk_data (where eval and train look)."""
    given = os.environ.get("NLTK_DATA", "").split(os.pathsep)[0]
    return Path(given) if given else Path(data_root) / NLTK_SUBDIR
