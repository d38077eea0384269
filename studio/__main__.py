"""The command line: python -m studio presets | models | generate | inspect | score | shootout (a thin shell over studio functions)."""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import sys
from pathlib import Path

from studio.errors import StudioError
from studio.settings import Settings

log = logging.getLogger("studio")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option as one 'error:' line, without the usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d{1,6})\s*[xX×]\s*(\d{1,6})\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"size must look like 1024x576, got '{text}'")
    return int(m.group(1)), int(m.group(2))


def _seed(text: str) -> int | None:
    """-1 means a random seed, as in the studio; other values go to the job's own check."""
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be a whole number, got '{text}'") from None
    return None if seed == -1 else seed


def _require_files(*paths: Path | None) -> None:
    """Name a missing input file as it was typed, before the library words it for a web upload."""
    for path in paths:
        if path is not None and not path.exists():
            raise StudioError(f"no such file: {path}")


def cmd_presets(args: argparse.Namespace, settings: Settings) -> int:
    from studio.presets import load_library

    library = load_library(user_dir=settings.user_presets_dir)
    width = max(len(p.id) for p in library)
    for p in library:
        print(f"{p.id:<{width}}  {p.title}")
    for w in library.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from studio.batch import photo_folders, photos_in, pick_platform

    photos = list(args.image) + (photos_in(args.input_dir) if args.input_dir else [])
    if not photos:
        raise StudioError("Give a photo (or several), or --input-dir with a folder of photos.")
    target = pick_platform(args.platform)
    out = _out_folder(args.out)
    if len(photos) == 1 and not args.input_dir:
        _generate_one(photos[0], out, args, settings, target)
        return 0
    # Several photos: each in OUT/<photo-stem>/, one line each; a bad photo does not stop the rest.
    failed = 0
    pairs = list(zip(photos, photo_folders(photos, out), strict=True))
    for k, (photo, folder), clips in _each_photo(pairs, args, settings, target):
        where = f"[{k}/{len(photos)}] {photo}"
        if isinstance(clips, StudioError):
            failed += 1
            print(f"error: {where}: {clips}", file=sys.stderr, flush=True)
            continue
        print(f"{where}: {clips} clips in {folder}", file=sys.stderr, flush=True)
    return 1 if failed else 0


def _each_photo(pairs: list, args: argparse.Namespace, settings: Settings, target):
    """(k, (photo, folder), clip count or StudioError) per photo: in turn here; with --ray as
    they finish, several in flight at once (a thread waits on each photo's job)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from studio.cluster import jobs_at_once

    def one(photo: Path, folder: Path, cancel: threading.Event | None = None):
        try:
            return _generate_one(photo, folder, args, settings, target, cancel)
        except StudioError as exc:
            return exc

    if not settings.ray_address:
        yield from ((k, pair, one(*pair)) for k, pair in enumerate(pairs, 1))
        return
    args = argparse.Namespace(**{**vars(args), "quiet": True})  # bars from threads would tangle
    cancel = threading.Event()
    with ThreadPoolExecutor(jobs_at_once(settings)) as pool:
        futures = {pool.submit(one, *pair, cancel): (k, pair) for k, pair in enumerate(pairs, 1)}
        try:
            for future in as_completed(futures):
                yield (*futures[future], future.result())
        finally:  # Ctrl-C: cancel the cluster's work; each photo removes what it wrote
            cancel.set()
            pool.shutdown(cancel_futures=True)


def _generate_one(
    image: Path, out: Path, args: argparse.Namespace, settings: Settings, target, cancel=None
) -> int:
    """Render one photo's takes into out, with their exports; all or nothing. Returns the count."""
    from tqdm import tqdm

    from studio.backends.base import RenderContext
    from studio.batch import Framer, enlarge_warning, export_clips, for_platform
    from studio.cluster import job_runner
    from studio.jobs import Job, prepare_job

    _require_files(image, args.edits)
    job = Job(
        image=str(image),
        preset=args.preset,
        backend=args.backend,
        seed=args.seed,
        variants=args.variants,
        aspect=args.aspect,
        size=args.size,
        frames=args.frames,
        duration=args.duration,
        fps=args.fps,
        strength=args.strength,
        params=_model_params(args),
        subject_edits=_edits(args),
        prompt=args.prompt,
        negative_prompt=args.negative_prompt,
        loop=args.loop,
    )
    # Checked before the disk is touched.
    prepared = prepare_job(for_platform(job, target), settings)
    warnings = list(prepared.warnings)
    if target is not None and not any("enlarges it" in w for w in warnings):
        warnings.append(enlarge_warning(prepared.photo.original_size, target))
    for w in filter(None, warnings):
        print(f"warning: {w}", file=sys.stderr)
    existed = out.exists()
    before = set(out.iterdir()) if existed else set()
    bar = tqdm(total=100, desc=f"Rendering {image.name}", unit="%", file=sys.stderr,
               disable=args.quiet or not sys.stderr.isatty(),
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}")  # fmt: skip
    try:
        last = None
        ctx = RenderContext() if cancel is None else RenderContext(cancel=cancel)
        for update in job_runner(settings)(prepared, out, settings, ctx):  # here, or on --ray
            bar.n = round(update.progress * 100)
            bar.refresh()
            if update.new_clip is not None:
                print(update.new_clip.path, flush=True)
            last = update
        formats = args.export or ([] if target is None else ["mp4"])
        if formats:
            bar.set_description_str(f"Exporting {image.name}")
            framer = Framer(prepared.photo.rgb)
            for done in export_clips(last.clips, formats, target, framer, args.gif_cap_mb):
                print(done.path, flush=True)
                if done.warning:
                    print(f"warning: {done.warning}", file=sys.stderr)
    except BaseException:
        # All or nothing on the command line: remove what this run wrote.
        if out.exists():
            for path in set(out.iterdir()) - before:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            if not existed and not any(out.iterdir()):
                out.rmdir()
        raise
    finally:
        bar.close()
    print(last.manifest)
    print(f"seed: {prepared.seed}", file=sys.stderr)
    return len(last.clips)


def _out_folder(text: str) -> Path:
    out = Path(text)
    if out.exists() and not out.is_dir():
        raise StudioError(f"--out {out} exists and is not a folder.")
    return out


def _edits(args: argparse.Namespace) -> tuple:
    """The subject corrections of --edits FILE.json (none without it)."""
    from studio.motion.edits import load_edits

    return load_edits(args.edits) if args.edits else ()


def cmd_inspect(args: argparse.Namespace, settings: Settings) -> int:
    from studio.inspect import inspect_photo

    _require_files(args.image, args.edits)
    edits = _edits(args)
    for path in inspect_photo(args.image, _out_folder(args.out), settings, edits):
        print(path, flush=True)
    return 0


def _model_params(args: argparse.Namespace) -> dict:
    """Model options travel in Job.params; unset ones are left to the checkpoint."""
    names = ("model_path", "steps", "offload", "cache", "device", "dtype")
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    from studio.backends import list_backends
    from studio.models import catalog_table, get_manager

    manager = get_manager()
    if args.download:
        from tqdm import tqdm

        for ckpt_id in args.download:
            ckpt = manager.checkpoint(ckpt_id)
            print(f"downloading {ckpt.name} ({ckpt.repo})…", file=sys.stderr)
            print(manager.download(ckpt, tqdm_class=tqdm))
        return 0
    for line in catalog_table(manager):
        print(line)
    # The embedded engine is a backend too, with nothing to download (as in the README's table).
    engine = next(info for info in list_backends(settings) if info.id == "engine")
    print(f"engine  {engine.title}  [built in]")
    print("    no weights, nothing to download")
    print("    any size and frame count · runs on the CPU, no GPU needed · "
          "Apache-2.0 (this repository): Commercial use allowed.")  # fmt: skip
    return 0


def cmd_score(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from studio.scorecard import describe, explain, load_source, score_files

    _require_files(args.source)
    source = load_source(args.source) if args.source else None
    verdicts = score_files([str(p) for p in args.clips], source)
    if len(verdicts) == 1 and verdicts[0].error:
        raise StudioError(verdicts[0].error)
    if args.json:
        print(json.dumps([v.to_dict() for v in verdicts], indent=2))
    else:
        blocks = []
        for v in verdicts:
            if v.error:
                print(f"error: {v.error}", file=sys.stderr)
            else:
                blocks.append("\n".join(describe(v.score, v.path)))
        print("\n\n".join(blocks))
        hint = "(add --explain for what each number means)"
        print("\n" + "\n".join(explain() if args.explain else [hint]))
    return 1 if any(v.error for v in verdicts) else 0


def _ids(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def cmd_shootout(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from studio.cluster import cell_runner
    from studio.shootout.run import run_shootout

    _require_files(*args.images)
    bar = None

    def progress(fraction: float, message: str) -> None:
        nonlocal bar  # created on first progress, so a refused shootout prints only its error
        if bar is None:
            bar = tqdm(total=100, desc="Shootout", file=sys.stderr,
                       disable=args.quiet or not sys.stderr.isatty(),
                       bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}{postfix}")  # fmt: skip
        bar.n = round(fraction * 100)
        bar.set_postfix_str(message, refresh=False)
        bar.refresh()

    try:
        result = run_shootout(
            args.images, args.presets, args.backends, args.out, settings, seed=args.seed,
            variants=args.variants, size=args.size, frames=args.frames, progress=progress,
            runner=cell_runner(settings),
        )  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    failed = {(r.photo_index, r.preset, r.backend): r for r in result.failed}
    for r in failed.values():
        print(f"error: {r.photo} · {r.preset} · {r.backend}: {r.error}", file=sys.stderr)
    for r in result.winners.values():
        won = f"{r.preset} on {r.backend}, variant {r.variant}, score {r.score:.1f}"
        print(f"winner {r.photo}: {won}")
    print(result.report)
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    from studio.batch import platform_names
    from studio.export import FORMATS
    from studio.models.options import CACHE_MODES, DTYPES, OFFLOAD_MODES
    from studio.plan import LOOPS

    parser = _Parser(
        prog="python -m studio", description="Motion Studio: photo -> short video variants."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("presets", help="list preset ids and titles")

    models = sub.add_parser("models", help="list the model checkpoints (VRAM, licence, state)")
    models.add_argument("--download", nargs="+", metavar="ID", help="download these checkpoints")

    gen = sub.add_parser("generate", help="render variants of one photo into a folder")
    gen.add_argument("image", type=Path, nargs="*",
                     help="photo file (JPEG, PNG, WebP, BMP, TIFF, GIF); with several, each "
                          "gets its own folder under --out")  # fmt: skip
    gen.add_argument("--input-dir", type=Path, default=None, metavar="DIR",
                     help="every photo in this folder, each into OUT/<photo-stem>/")  # fmt: skip
    gen.add_argument("--preset", required=True, help="preset id, e.g. product/slow-push-in")
    gen.add_argument("--backend", default="engine", help="backend id (default: engine)")
    gen.add_argument("--variants", type=int, default=4, help="how many variants (default 4)")
    gen.add_argument("--seed", type=_seed, default=None,
                     help="seed for reproducible variants (omit or -1: random)")  # fmt: skip
    gen.add_argument("--size", type=_size, default=None, help="output size WxH, e.g. 1024x576")
    gen.add_argument(
        "--aspect", default=None, help="16:9, 9:16, 1:1, 4:5 or match (default: preset's)"
    )
    gen.add_argument(
        "--frames", type=int, default=None, help="frame count (default: duration x fps)"
    )
    gen.add_argument("--duration", type=float, default=None, help="seconds (default: preset's)")
    gen.add_argument("--fps", type=int, default=None, help="frames per second (default: preset's)")
    gen.add_argument("--strength", type=float, default=None,
                     help="motion strength 0..2 (default: the preset's, 1 for the built-ins)")  # fmt: skip
    gen.add_argument("--loop", choices=LOOPS, default=None,
                     help="make each clip loop: seamless (the motion comes back to where it "
                          "started) or boomerang (forwards, then backwards); default: plays once")  # fmt: skip
    gen.add_argument("--out", required=True, help="folder for the clips and manifest")
    gen.add_argument("--export", action="append", choices=FORMATS, default=None,
                     help="also write each clip as mp4, webm or gif beside it (repeatable)")  # fmt: skip
    gen.add_argument("--platform", choices=platform_names(), default=None,
                     help="render and export for a platform's frame: vertical (9:16), portrait "
                          "(4:5), square (1:1) or landscape (16:9)")  # fmt: skip
    gen.add_argument("--gif-cap-mb", type=float, default=None, metavar="MB",
                     help="the size a GIF export must fit (default: the platform's, 8 MB)")  # fmt: skip
    gen.add_argument("--edits", type=Path, default=None, metavar="FILE.json",
                     help="subject corrections: a list of strokes, or a clip's manifest")  # fmt: skip
    gen.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    gen.add_argument("--ray", default=None, metavar="ADDRESS",
                     help="render on the Ray cluster at ADDRESS (host:port; see the README)")  # fmt: skip
    model = gen.add_argument_group("model backends (see: python -m studio models)")
    model.add_argument(
        "--model-path", default=None, help="local diffusers folder instead of the hub"
    )
    model.add_argument(
        "--steps", type=int, default=None, help="denoising steps (default: the model's)"
    )
    model.add_argument("--offload", choices=OFFLOAD_MODES, default=None,
                       help="GPU memory mode (default: the model's)")  # fmt: skip
    model.add_argument("--cache", choices=CACHE_MODES,
                       default=None, help="step-cache acceleration (default: none)")  # fmt: skip
    model.add_argument("--prompt", default=None,
                       help="your own prompt for every take (default: the preset's phrasings)")  # fmt: skip
    model.add_argument("--negative-prompt", default=None,
                       help="what to avoid (default: the preset's; '' for none)")  # fmt: skip
    model.add_argument("--device", default=None, help="cuda, cuda:1, mps or cpu (default: auto)")
    model.add_argument("--dtype", choices=tuple(DTYPES), default=None, help="(default: auto)")

    ins = sub.add_parser(
        "inspect",
        help="write what the engine believes about a photo: matte, depth, faces, an overlay",
        description="Writes matte.png (8-bit), depth.png (16-bit, near is bright), faces.json "
        "and overlay.png at the photo's size.",
    )
    ins.add_argument("image", type=Path, help="photo file (JPEG, PNG, WebP, BMP, TIFF, GIF)")
    ins.add_argument("--out", required=True, help="folder for the four files")
    ins.add_argument("--edits", type=Path, default=None, metavar="FILE.json",
                     help="subject corrections: a list of strokes, or a clip's manifest")  # fmt: skip

    score = sub.add_parser("score", help="print the metrics and score of clips made anywhere")
    score.add_argument("clips", nargs="+", type=Path, help="video files (MP4, WebM, MOV, GIF...)")
    score.add_argument("--source", type=Path, default=None, help="the photo, to measure likeness")
    score.add_argument("--json", action="store_true", help="print one JSON list, one object a clip")
    score.add_argument("--explain", action="store_true", help="say what each metric means")

    shoot = sub.add_parser(
        "shootout",
        help="every photo x preset x backend on the same seeds, scored, with an HTML report",
        description="Exits 1 when any cell failed; its error is in the report and on stderr.",
    )
    shoot.add_argument("images", nargs="+", type=Path, help="photo files")
    shoot.add_argument("--presets", type=_ids, required=True, help="preset ids, comma-separated")
    shoot.add_argument("--backends", type=_ids, default=["engine"],
                       help="backend ids, comma-separated (default: engine)")  # fmt: skip
    shoot.add_argument("--out", required=True, help="folder for the clips, report and results")
    shoot.add_argument("--seed", type=_seed, default=None,
                       help="seed for a reproducible shootout (omit or -1: random)")  # fmt: skip
    shoot.add_argument("--variants", type=int, default=2, help="variants per cell (default 2)")
    shoot.add_argument("--size", type=_size, default=None, help="WxH (default: preset's aspect)")
    shoot.add_argument("--frames", type=int, default=None, help="frame count (default: preset's)")
    shoot.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    shoot.add_argument("--ray", default=None, metavar="ADDRESS",
                       help="run the cells on the Ray cluster at ADDRESS (host:port)")  # fmt: skip
    return parser


COMMANDS = {"presets": cmd_presets, "models": cmd_models, "generate": cmd_generate,
            "inspect": cmd_inspect, "score": cmd_score, "shootout": cmd_shootout}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )
    try:
        settings = Settings.from_env(ray_address=getattr(args, "ray", None))
        return COMMANDS[args.command](args, settings)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: keep the promise of one line, but log the traceback
        log.debug("unexpected failure", exc_info=True)
        print(
            f"error: unexpected {exc.__class__.__name__}: {exc} (run with -v for details)",
            file=sys.stderr,
        )
        if args.verbose:
            import traceback

            traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
