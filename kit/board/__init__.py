"""The leaderboard: the store of record, ranking, exports and pages, the classroom inbox, participant identity."""
