"""Semantic relevance of an image and a caption: TF-IDF cosine (the DAA code calls it CIDEr).

`sem(i, j)` = mean over image i's five captions k of tfidf(k) . tfidf(j), with scikit-learn's
CountVectorizer + TfidfTransformer defaults fitted on all captions of the split in use.
Everything stays sparse; a dense array is only ever one requested block of rows.
"""

from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

from bench.data.splits import CAPTIONS_PER_IMAGE


def fit_tfidf(captions: Sequence[str]) -> sparse.csr_matrix:
    """L2-normalised TF-IDF rows (n_captions x n_terms), fitted on exactly these captions."""
    counts = CountVectorizer().fit_transform(captions)
    return TfidfTransformer().fit_transform(counts).tocsr()


def image_profiles(tfidf: sparse.csr_matrix, caption_groups: np.ndarray) -> sparse.csr_matrix:
    """Mean TF-IDF row of each image's captions; `caption_groups` is (n_images, 5) row indices."""
    caption_groups = np.asarray(caption_groups)
    n_images, per_image = caption_groups.shape
    averaging = sparse.csr_matrix(
        (np.full(caption_groups.size, 1.0 / per_image), caption_groups.ravel(),
         np.arange(0, caption_groups.size + 1, per_image)),
        shape=(n_images, tfidf.shape[0]),
    )
    return (averaging @ tfidf).tocsr()


def relevance_block(profiles: sparse.csr_matrix, tfidf: sparse.csr_matrix,
                    captions: np.ndarray | slice = slice(None)) -> np.ndarray:
    """Dense float32 (n_images, n_selected_captions) relevance for the given caption rows."""
    return np.asarray((profiles @ tfidf[captions].T).todense(), dtype=np.float32)


def consecutive_groups(n_images: int, first_image: int = 0) -> np.ndarray:
    """SCAN's layout: image i owns captions 5i .. 5i+4."""
    start = (first_image + np.arange(n_images))[:, None] * CAPTIONS_PER_IMAGE
    return start + np.arange(CAPTIONS_PER_IMAGE)[None, :]


def split_relevance(captions: Sequence[str]) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """TF-IDF fitted on a whole evaluation split and its per-image profiles (sparse)."""
    tfidf = fit_tfidf(captions)
    return image_profiles(tfidf, consecutive_groups(tfidf.shape[0] // CAPTIONS_PER_IMAGE)), tfidf
