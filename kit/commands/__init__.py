"""One module per ``kit`` sub-command; each defines ``add_parser(subparsers)`` and ``run(args)``."""
