"""The leaderboard: the store of record, ranking, exports and pages, the classroom inbox, participant identity.

One module per job: ``store`` (the SQLite store of record) with ``migrations`` (its schema),
``phases`` (open, closed, revealed) and ``tokens``; ``identity`` (who a name is);
``recording`` (a score stored, exports rewritten); ``logfile`` (the CSV log format);
``exports`` (the CSV exports of the store); ``ranking``; ``leaderboard`` (ranking rendered,
pages written) with ``pages`` (text, Markdown, HTML); ``standings`` (the server's live
board); ``inbox`` (classroom mode) with ``finals`` (final lists).
"""
