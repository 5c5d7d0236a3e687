"""``kit kaggle``: download a Kaggle competition, submit to it, read its leaderboard, host one."""
import argparse

from kit.constraints import Integral, Interval, check_param


def add_parser(subparsers):
    p = subparsers.add_parser(
        "kaggle",
        help="download, submit and read leaderboards on Kaggle",
        description="Use Kaggle through the kaggle package. Credentials: set KAGGLE_API_TOKEN "
        "(https://www.kaggle.com/settings/api) or save ~/.kaggle/kaggle.json.",
    )
    sub = p.add_subparsers(dest="kaggle_command", metavar="ACTION")
    sub.required = True

    d = sub.add_parser("download", help="download a competition's files",
                       description="Download and unzip a Kaggle competition's files.")
    d.add_argument("competition", metavar="COMPETITION", help="the competition's slug, as in its Kaggle address")
    d.add_argument("-p", "--path", metavar="DIR", help="where to put the files (default: ./data/COMPETITION)")
    d.add_argument("--keep-zip", action="store_true", help="keep the downloaded archive unextracted")

    s = sub.add_parser("submit", help="check a submission locally, then submit it",
                       description="Check FILE locally (against --local-competition's ids when given, or "
                       "data/COMPETITION when it exists; else header, ids and values), then submit it.")
    s.add_argument("file", metavar="FILE", help="the submission CSV")
    s.add_argument("-m", "--message", required=True, help="submission description")
    s.add_argument("-c", "--competition", required=True, metavar="COMPETITION", help="the competition's slug")
    s.add_argument("--local-competition", metavar="NAME|DIR", help="local copy of the competition to check ids against")
    s.add_argument("--data", metavar="DIR", help="folder holding competitions (default: ./data)")

    lb = sub.add_parser("leaderboard", help="print a competition's Kaggle leaderboard")
    lb.add_argument("competition", metavar="COMPETITION", help="the competition's slug")

    h = sub.add_parser("host", help="create a Kaggle competition from a local one (kaggle 2.2+); --launch-only opens it",
                       description="Create a Kaggle competition from a prepared one with KaggleApi 2.x: upload "
                       "the public files (everything but private/), the solution with its Usage column "
                       "(Kaggle's Public/Private split), the overview, evaluation, data and rules pages, and "
                       "the settings the API takes, then wait until Kaggle has processed the solution. It stays "
                       "a draft: set the metric (RMSE) and the daily limit on Kaggle's host page (the API has "
                       "no field for them), then run it again with --launch-only, which checks the solution, "
                       "pages and deadline before launching. --dry-run prints every call and touches nothing.")
    h.add_argument("--competition", metavar="NAME|DIR", help="competition name under --data, or its folder (default: "
                   "practice; with --launch-only, optional: the row counts are then compared)")
    h.add_argument("--data", metavar="DIR", help="folder holding competitions (default: ./data)")
    h.add_argument("--slug", required=True, metavar="SLUG", help="its address on Kaggle: kaggle.com/competitions/SLUG")
    h.add_argument("--title", metavar="T", help="title on Kaggle (default: 'Spectral similarity: NAME')")
    h.add_argument("--privacy", choices=["public", "limited", "private"], default="limited",
                   help="who can see it (limited, the default: only people with the link)")
    h.add_argument("--wait", type=int, default=300, metavar="SECONDS",
                   help="how long to wait for Kaggle to process the solution (default 300)")
    only = h.add_mutually_exclusive_group()
    only.add_argument("--launch-only", action="store_true",
                      help="only launch an uploaded competition, after checking what the API can check; run it "
                      "once the metric and the daily limit are set on the host page")
    only.add_argument("--print-page", choices=["overview", "evaluation", "data", "terms"], metavar="PAGE",
                      help="print one page's Markdown (overview, evaluation, data, terms) and send nothing")
    # The old one-step launch: refused with a pointer to --launch-only.
    h.add_argument("--launch", action="store_true", help=argparse.SUPPRESS)
    h.add_argument("--dry-run", action="store_true", help="print the calls with their arguments; send nothing")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    actions = {"download": run_download, "submit": run_submit, "leaderboard": run_leaderboard, "host": run_host}
    return actions[args.kaggle_command](args)


def run_download(args: argparse.Namespace) -> int:
    from kit.hosting import kaggle as kaggle_client

    folder = kaggle_client.download(args.competition, args.path, unzip=not args.keep_zip)
    print(f"Downloaded {args.competition} to {folder}")
    return 0


def run_submit(args: argparse.Namespace) -> int:
    from kit.hosting import kaggle as kaggle_client
    from kit.safetext import printable

    local = args.local_competition or _local_copy(args.competition, args.data)
    # submit() checks the file before connecting: a bad file is refused without credentials.
    submission, response = kaggle_client.submit(args.file, args.message, args.competition,
                                                local_competition=local, data=args.data)
    checked = "against " + str(local) if local else "for shape (pass --local-competition to check its ids)"
    message = printable(getattr(response, "message", None) or "", 300)
    print(f"Checked {args.file} ({submission.rows:,} rows) {checked}.")
    print(f"Submitted to {args.competition}" + (f": {message}" if message else "."))
    return 0


def run_leaderboard(args: argparse.Namespace) -> int:
    from kit.hosting import kaggle as kaggle_client

    rows = kaggle_client.leaderboard(args.competition)
    print(kaggle_client.format_leaderboard(args.competition, rows))
    return 0


def run_host(args: argparse.Namespace) -> int:
    from kit.errors import UserError
    from kit.hosting import kaggle as kaggle_client

    slug = kaggle_client.check_slug(args.slug)
    if args.launch:
        raise UserError("--launch is a separate step now: host, set the metric and the daily limit on Kaggle's "
                        f"host page, then run kit kaggle host --slug {slug} --launch-only")
    check_param(args.wait, "--wait", Interval(Integral, 0, None))
    if args.launch_only and args.dry_run:
        print(f"Dry run: nothing is sent to Kaggle. --launch-only would check, then launch {slug}:")
        for call in kaggle_client.launch_calls(slug):
            print(call.describe())
        return 0
    if args.launch_only:
        kaggle_client.launch(slug, competition=args.competition or None, data=args.data)
        print(f"Launched https://www.kaggle.com/competitions/{slug}.")
        return 0
    if args.print_page:
        plan = kaggle_client.host_plan(args.competition or None, slug, title=args.title, privacy=args.privacy,
                                       data=args.data)
        print(plan.pages[args.print_page][1], end="")
        return 0
    plan = kaggle_client.host(args.competition or None, slug, title=args.title, privacy=args.privacy,
                              dry_run=args.dry_run, data=args.data, wait_s=args.wait)
    if not args.dry_run:
        print(f"Hosted {plan.url}: a draft, not launched (do the steps above, then --launch-only).")
    return 0


def _local_copy(competition, data):
    """The local competition folder of the same name, when there is one."""
    from kit.paths import COMPETITION_FILE, data_dir

    folder = data_dir(data) / competition
    return folder if (folder / COMPETITION_FILE).is_file() else None
