"""``kit export codabench``: hand a competition to Codabench as a v2 bundle."""
import argparse


def add_parser(subparsers):
    p = subparsers.add_parser(
        "export",
        help="export a competition for a hosting platform (Codabench)",
        description="Write a competition as a bundle another platform can host.",
    )
    sub = p.add_subparsers(dest="export_command", metavar="PLATFORM")
    sub.required = True
    c = sub.add_parser(
        "codabench",
        help="a Codabench v2 competition bundle (zip)",
        description="Write a Codabench v2 bundle: pages, logo, the public files as participant data, two "
        "tasks and two phases (Public, then the final Private ranking with each participant's best "
        "submission moved to it), and a NumPy-only scoring program that gives `kit score`'s numbers. "
        "Upload it at https://www.codabench.org/competitions/upload/.",
    )
    c.add_argument("--competition", metavar="NAME|DIR", help="competition name under --data, or its folder (default: practice)")
    c.add_argument("--data", metavar="DIR", help="folder holding competitions (default: ./data)")
    c.add_argument("--out", required=True, metavar="BUNDLE.zip", help="the bundle to write")
    c.add_argument("--start", metavar="DATE", help="Public phase start, UTC YYYY-MM-DD[THH:MM] (default: today)")
    c.add_argument("--end", metavar="DATE", help="Public phase end, UTC (default: competition.json's deadline, "
                   "else 8 weeks after the start); the Private phase opens a minute later")
    c.add_argument("--title", metavar="T", help="title on Codabench (default: 'Spectral similarity: NAME')")
    c.add_argument("--max-submissions", type=int, metavar="N", help="submissions per participant in all during "
                   "the Public phase (default: max_daily_submissions x the days of the phase)")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    import zipfile

    from kit.competition.folder import as_competition
    from kit.hosting.codabench import export_codabench
    from kit.hosting.files import public_files
    from kit.hosting.pages import hosted_licences, licence_warning

    path = export_codabench(args.competition, args.out, start=args.start, end=args.end, title=args.title,
                            data=args.data, max_submissions=args.max_submissions)
    with zipfile.ZipFile(path) as bundle:
        size = sum(info.file_size for info in bundle.infolist())
        members = len(bundle.infolist())
    print(f"Wrote {path} ({members} files, {size:,} bytes unpacked). Upload it at "
          "https://www.codabench.org/competitions/upload/")
    competition = as_competition(args.competition, args.data)
    warning = licence_warning(hosted_licences(competition, public_files(competition)))
    if warning:
        print(warning)
    return 0
