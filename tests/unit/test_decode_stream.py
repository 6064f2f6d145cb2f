"""Decoding a manifest read as a stream: the same file as from a list, and rows read only as needed."""

from __future__ import annotations

from unittest import mock

import pytest

from selftrain.data.manifest import ManifestStream, write_manifest
from selftrain.decode import DecoderConfig, DecoderPool, Shard, decode_manifest
from selftrain.errors import ManifestError
from selftrain.io import JsonlWriter, read_jsonl
from tests.decode_helpers import FakeModel, make_corpus

TEXTS = ["the cat sat", "a dog", "the mat is on the log", "my cat", "a dog sat on a mat", "the log", "cat"] * 3
BATCH = 4


@pytest.fixture
def corpus(tmp_path):
    model = FakeModel()
    utterances = make_corpus(tmp_path / "wav", TEXTS, model.tokenizer.ctc_labels())
    utterances.insert(5, utterances[2])  # a repeated id: screened out before any audio is read
    manifest = tmp_path / "unlabeled.csv"
    write_manifest(utterances, manifest)
    decoder = DecoderPool(DecoderConfig(decoder="greedy", batch_size=BATCH, workers=0), model.tokenizer.ctc_labels(),
                             None, "t0")
    return model, manifest, decoder


@pytest.mark.parametrize("shard", [None, Shard(1, 2)])
def test_stream_decodes_the_same_file_as_a_list(tmp_path, corpus, shard):
    from selftrain.data.manifest import read_manifest

    model, manifest, decoder = corpus
    listed = decode_manifest(model, read_manifest(manifest), decoder, tmp_path / "list.jsonl", shard, progress=False)
    streamed = decode_manifest(model, ManifestStream(manifest), decoder, tmp_path / "stream.jsonl", shard, progress=False)
    assert (tmp_path / "stream.jsonl").read_bytes() == (tmp_path / "list.jsonl").read_bytes()
    for name in ("utterances", "already_done", "decoded", "bad_audio", "skipped_rows"):
        assert getattr(streamed, name) == getattr(listed, name), name


def test_limited_then_resumed_stream_counts_every_row(tmp_path, corpus):
    model, manifest, decoder = corpus
    out = tmp_path / "h.jsonl"
    first = decode_manifest(model, ManifestStream(manifest), decoder, out, limit=5, progress=False)
    assert first.decoded == 5 and first.utterances == len(TEXTS) + 1
    second = decode_manifest(model, ManifestStream(manifest), decoder, out, progress=False)
    assert second.already_done == 5 and second.decoded == len(TEXTS) - 5
    assert [r["id"] for r in read_jsonl(out)] == list(dict.fromkeys(u.id for u in ManifestStream(manifest)))


def test_rows_are_read_only_a_few_batches_ahead(tmp_path, corpus):
    model, manifest, _ = corpus
    decoder = DecoderPool(DecoderConfig(decoder="greedy", batch_size=BATCH, workers=0, max_pending_batches=1),
                             model.tokenizer.ctc_labels(), None, "t0")
    read, ahead = [], []

    def rows():
        for utt in ManifestStream(manifest):
            read.append(utt.id)
            yield utt

    original = JsonlWriter.write

    def spy(self, record):
        ahead.append(len(read) - len(ahead))  # rows read but not yet written
        original(self, record)

    with mock.patch.object(JsonlWriter, "write", spy):
        decode_manifest(model, rows(), decoder, tmp_path / "h.jsonl", progress=False)
    assert len(ahead) == len(TEXTS)
    assert max(ahead) <= 2 * BATCH < len(TEXTS)  # the batch being written and the one read after it


def test_a_malformed_row_is_refused_before_any_work(tmp_path):
    manifest = tmp_path / "bad.csv"
    manifest.write_text("ID,duration,wav,spk_id,wrd\na,1.0,a.wav,s,\nb,soon,b.wav,s,\n")
    with pytest.raises(ManifestError, match="bad.csv:3: duration 'soon' is not a number"):
        ManifestStream(manifest)


def test_shards_merge_as_streams_or_whole_into_the_unsharded_file(tmp_path, corpus):
    import random

    from selftrain.decode import merge_shards

    model, manifest, decoder = corpus
    whole = tmp_path / "whole.jsonl"
    decode_manifest(model, ManifestStream(manifest), decoder, whole, progress=False)
    shards = []
    for i in range(3):
        shards.append(tmp_path / f"shard{i}.jsonl")
        decode_manifest(model, ManifestStream(manifest), decoder, shards[-1], Shard(i, 3), progress=False)
    report = merge_shards(shards, ManifestStream(manifest), tmp_path / "merged.jsonl")
    assert (tmp_path / "merged.jsonl").read_bytes() == whole.read_bytes() and report.missing == []
    lines = shards[0].read_text().splitlines(keepends=True)
    random.Random(0).shuffle(lines)  # a shard out of manifest order is merged whole
    shards[0].write_text("".join(lines))
    merge_shards(shards, ManifestStream(manifest), tmp_path / "merged2.jsonl")
    assert (tmp_path / "merged2.jsonl").read_bytes() == whole.read_bytes()
