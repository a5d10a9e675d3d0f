"""`gir corpus build`: rebuild the pretraining corpus from Debian packages (corpus/manifest.csv)."""

from __future__ import annotations

from gir.cli.common import command, say


def _corpus_args(p):
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = actions.add_parser("build", help="fetch the .deb files, check every sha256, write photos")
    b.add_argument("--manifest", default="corpus/manifest.csv")
    b.add_argument("--out", default="data/corpus", help="where the photos go (a data dir)")
    b.add_argument("--debs", default=None, help="folder of .deb files (default: OUT/.debs)")
    b.add_argument("--offline", action="store_true",
                   help="use only the .deb files already in --debs; never run apt-get download")


@command("corpus", "the pretraining corpus: openly licensed photos from Debian packages")(
    _corpus_args)
def cmd_corpus(args) -> int:
    from gir.data.corpus import build_corpus

    report = build_corpus(args.manifest, args.out, args.debs, download=not args.offline)
    for err in report["errors"]:
        say(f"gir corpus: {err['name']}: {err['reason']}")
    say(f"corpus: {len(report['written'])} written, {len(report['skipped'])} already there, "
        f"{len(report['errors'])} failed -> {report['out_dir']}")
    return 1 if report["errors"] else 0
