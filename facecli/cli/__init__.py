"""The ``facecli`` command line: one module per command group, each a thin user of :mod:`facecli.api`.

It parses arguments (choices as Enums, numeric ranges, path checks), calls the library and prints: which
model file it used (shipped or not) and on which device, a summary table, and where it wrote.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from facecli.cli import evaluate as _evaluate
from facecli.cli import export as _export
from facecli.cli import gallery as _gallery
from facecli.cli import train as _train
from facecli.cli.classify import classify_cmd
from facecli.cli.cluster import cluster_cmd
from facecli.cli.match import calibrate_cmd, match_cmd
from facecli.cli.verify import verify_cmd
from facecli.errors import AllInputsFailed, FacecliError

app = typer.Typer(
    help="Gender classification and distortion-robust face recognition: train, export, gallery, match, classify.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=True,
)
app.add_typer(_train.app, name="train")
app.add_typer(_export.app, name="export")
app.add_typer(_evaluate.app, name="evaluate")
app.add_typer(_gallery.app, name="gallery")
app.command("classify")(classify_cmd)
app.command("match")(match_cmd)
app.command("calibrate")(calibrate_cmd)
app.command("verify")(verify_cmd)
app.command("cluster")(cluster_cmd)


def _version(show: bool) -> None:
    if show:
        from facecli import __version__

        print(f"facecli {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Gender classification and distortion-robust face recognition: train, export, gallery, match, classify.

    Every command prints the model file it uses and the device it runs on; results are written
    atomically. Use --help on any command for its options and defaults.
    """


def _click_errors() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(usage errors, aborts) of the click that Typer runs on (its own copy in recent releases)."""
    usage: list[type] = []
    aborts: list[type] = [typer.Abort]
    for mod in ("click.exceptions", "typer._click.exceptions"):
        try:
            m = __import__(mod, fromlist=["UsageError"])
        except ImportError:
            continue
        usage += [m.UsageError] if hasattr(m, "UsageError") else []
        aborts += [m.Abort] if hasattr(m, "Abort") else []
    return tuple(usage), tuple(aborts)


def main() -> None:
    """Console-script entry point.

    Bad input (a FacecliError, or an option value outside its range, a missing argument, an unknown option)
    becomes one line on stderr, ``error: ...``, and exit status 2, never a traceback.
    """
    import warnings

    # NumPy's warnings on odd inputs (a 1-pixel image's empty statistics) are not the user's business: each
    # such file gets its row (or error row) anyway
    warnings.filterwarnings("ignore", category=RuntimeWarning, module="numpy")
    usage_errors, aborts = _click_errors()
    try:
        rv = app(standalone_mode=False)
    except AllInputsFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except FacecliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:  # a write the library did not expect to fail (a report folder on a full disk)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        sys.exit(2)
    except usage_errors as exc:
        msg = exc.format_message()
        if not msg:  # no arguments: the help was shown
            sys.exit(2)
        print(f"error: {msg}", file=sys.stderr)
        sys.exit(2)
    except (KeyboardInterrupt, *aborts):
        rv = 130
    if rv == 130:  # Ctrl-C: Typer turns it into this return value itself, without a word
        print("interrupted: the parts written so far are kept; run the same classify, match or cluster command "
              "with --resume to continue", file=sys.stderr)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()

