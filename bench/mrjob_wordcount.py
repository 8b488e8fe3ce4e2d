"""mrjob's word-frequency example (mrjob/examples/mr_word_freq_count.py) with
the word semantics of DESIGN.md, so that its result can be checked: lines as
raw bytes decoded as UTF-8 with errors="replace" (mrjob's default protocol
falls back to latin-1 for such lines), words by `\\w+` over the lower-cased
line instead of the example's `[\\w']+`. Run by the benchmark's environment."""

import re

from mrjob.job import MRJob
from mrjob.protocol import BytesValueProtocol

WORD_RE = re.compile(r"\w+")


class MRWordFreqCount(MRJob):
    INPUT_PROTOCOL = BytesValueProtocol

    def mapper(self, _, line):
        for word in WORD_RE.findall(line.decode("utf-8", "replace").lower()):
            yield word, 1

    def combiner(self, word, counts):
        yield word, sum(counts)

    def reducer(self, word, counts):
        yield word, sum(counts)


if __name__ == "__main__":
    MRWordFreqCount.run()
