"""Training text: the embedded corpus, a cached BPE tokenizer, memmapped shards, batches.

``corpus`` and ``shards`` need no torch; ``batches`` does.
"""

from archsearch.data.corpus import DataError, iter_documents
from archsearch.data.shards import Corpus, load_tokenizer, prepare, unigram_entropy

__all__ = ["Corpus", "DataError", "iter_documents", "load_tokenizer", "prepare", "unigram_entropy"]
