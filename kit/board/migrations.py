"""The store's schema: its versioned migrations, and the re-keying of participants when the key rules change.

The schema is versioned with ``PRAGMA user_version``; opening an older file upgrades it
step by step (:func:`upgrade`), a newer one is refused.
"""
import functools
import hashlib
import sqlite3
import sys
import unicodedata

from kit.board.identity import _skeleton_table, participant_key
from kit.errors import UserError

#: ``settings`` key of the identity-key version the participants' keys were computed with.
KEY_VERSION_SETTING = "identity_key_version"
#: ``settings`` key holding the schema version a store was created with.
CREATED_SCHEMA = "created_with_schema"

# Each entry upgrades the schema from version i to i + 1. Never edit a released step:
# add a new one, so that every existing database can follow.
_MIGRATIONS = [
    """
    CREATE TABLE participants (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,                 -- display form, as first written (NFKC)
        key TEXT NOT NULL UNIQUE,           -- identity key: same key, same person
        token_sha256 TEXT NOT NULL UNIQUE,  -- the token itself is never stored
        created_at TEXT NOT NULL,           -- server UTC time, ISO 8601
        revoked_at TEXT
    );
    CREATE TABLE submissions (
        id INTEGER PRIMARY KEY,
        participant_id INTEGER NOT NULL REFERENCES participants(id),
        submitted_at TEXT NOT NULL,         -- server UTC time the upload arrived
        sha256 TEXT NOT NULL,
        stored_path TEXT NOT NULL,          -- relative to the competition's private/ folder
        file_name TEXT NOT NULL,            -- the uploaded name, cleaned, never used as a path
        size INTEGER NOT NULL,
        rows INTEGER,
        public REAL,
        private REAL,
        per_bin_public TEXT,                -- JSON object, bin label -> RMSE
        per_bin_private TEXT,
        status TEXT NOT NULL CHECK (status IN ('scored', 'error')),
        error TEXT,
        description TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX submissions_by_participant ON submissions (participant_id, submitted_at);
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 2: one store for kit serve, kit score and the inbox.
    """
    ALTER TABLE participants ADD COLUMN has_token INTEGER NOT NULL DEFAULT 1;  -- 0: named by kit score or an inbox file
    ALTER TABLE submissions ADD COLUMN source TEXT NOT NULL DEFAULT 'server';  -- server, score, inbox or log
    ALTER TABLE submissions ADD COLUMN validation REAL;                        -- from the manifest (kit score)
    CREATE INDEX submissions_by_content ON submissions (sha256, participant_id);
    """,
    # 3: uploads the scorer failed on. Their file is not kept, but each counts against the
    # day's allowance, so that a file breaking the scorer cannot be sent without end.
    """
    CREATE TABLE failed_attempts (
        id INTEGER PRIMARY KEY,
        participant_id INTEGER NOT NULL REFERENCES participants(id),
        attempted_at TEXT NOT NULL,         -- server UTC time the upload arrived
        sha256 TEXT NOT NULL,
        file_name TEXT NOT NULL,            -- the uploaded name, cleaned
        size INTEGER NOT NULL,
        error TEXT NOT NULL                 -- for the teacher, never shown to the participant
    );
    CREATE INDEX failed_attempts_by_participant ON failed_attempts (participant_id, attempted_at);
    """,
    # 4: when the classroom inbox first saw each file content, kept in the store (owner
    # only) rather than beside the public exports, where anyone could backdate a file.
    """
    CREATE TABLE inbox_seen (
        file TEXT NOT NULL,                 -- the inbox file name
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        first_seen TEXT NOT NULL,           -- UTC time of the first poll that saw it
        PRIMARY KEY (file, size, sha256)
    );
    """,
    # 5: final submissions (Kaggle's rule): up to 2 scored submissions a participant chose
    # to be ranked on at the reveal.
    """
    CREATE TABLE final_choices (
        submission_id INTEGER PRIMARY KEY REFERENCES submissions(id),
        participant_id INTEGER NOT NULL REFERENCES participants(id),
        chosen_at TEXT NOT NULL             -- server UTC time of the choice
    );
    CREATE INDEX final_choices_by_participant ON final_choices (participant_id);
    """,
    # 6: teams (Kaggle's rule): members share one daily allowance, one set of final
    # submissions and one leaderboard row under the team's name.
    """
    ALTER TABLE participants ADD COLUMN team TEXT;      -- the team's display name (NULL: on their own)
    ALTER TABLE participants ADD COLUMN team_key TEXT;  -- its identity key (kit.board.identity.participant_key)
    CREATE INDEX participants_by_team ON participants (team_key);
    """,
]
SCHEMA_VERSION = len(_MIGRATIONS)


@functools.lru_cache(maxsize=1)
def key_version():
    """A fingerprint of :func:`kit.board.identity.participant_key`: it changes when the keys it gives may change.

    The character table the key folds with (the confusables data of the installed
    release and the Latin letters read by name), the Unicode version, and the keys of
    names that exercise the rules (case, width, accents, separators, look-alikes): a new
    release, table or rule changes it, and the store then recomputes its keys.
    """
    digest = hashlib.sha256(unicodedata.unidata_version.encode("ascii"))
    digest.update(repr(sorted(_skeleton_table().items())).encode("utf-8", "surrogatepass"))
    for name in _KEY_PROBES:
        digest.update(b"\0" + participant_key(name).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:16]


#: Names whose keys show a change of :func:`kit.board.identity.participant_key`'s rules.
_KEY_PROBES = ("Bob Smith", "bob_smith", "ＢＯＢ-smith", "Zoé  O'Neil", "zoe\u0308", "AIice", "rn m", "ᴋɗø ʙᴏʙ",
               "ﬁona", "ВОВ", "ΒΟΒ", "Straße", "İstanbul", "देवनागरी", "ไทย", "José Pérez", "a--b__c  d", "Ǆemal")


def upgrade(conn, path):
    """Bring the schema of the store at ``path`` to :data:`SCHEMA_VERSION` inside the caller's write transaction.

    Each step of :data:`_MIGRATIONS` not yet applied runs in order; a file made by a newer
    kit is refused with a :class:`UserError`. The participants' keys are recomputed when
    :func:`key_version` changed (:func:`rekey`).
    """
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise UserError(
            f"{path} has schema version {version}, newer than this kit's {SCHEMA_VERSION}: "
            "upgrade specsim-kit to open it"
        )
    for step in range(version, SCHEMA_VERSION):
        for statement in _statements(_MIGRATIONS[step]):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {step + 1}")
    if version == 0:
        conn.execute("INSERT INTO settings (key, value) VALUES (?, ?)", (CREATED_SCHEMA, str(SCHEMA_VERSION)))
    rekey(conn, path)


def rekey(conn, path):
    """Recompute every participant's key from their stored name when the key function changed.

    Two participants who become one person under the new key are both kept (neither
    one's submissions move to the other): the later one gets ``<key>#<id>``, which no
    name can produce, and a line on stderr says so once.
    """
    version = key_version()
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (KEY_VERSION_SETTING,)).fetchone()
    if row is not None and row[0] == version:
        return
    owner, changed, collisions = {}, {}, []
    for person in conn.execute("SELECT id, name, key FROM participants ORDER BY id").fetchall():
        key = participant_key(person["name"])
        if key in owner:
            collisions.append((owner[key], person["name"]))
            key = f"{key}#{person['id']}"
        else:
            owner[key] = person["name"]
        if key != person["key"]:
            changed[person["id"]] = key
    # Two steps, so that keys swapping between participants never trip the UNIQUE index.
    for pid in changed:
        conn.execute("UPDATE participants SET key = ? WHERE id = ?", (f"#rekey#{pid}", pid))
    for pid, key in changed.items():
        conn.execute("UPDATE participants SET key = ? WHERE id = ?", (key, pid))
    conn.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = "
                 "excluded.value", (KEY_VERSION_SETTING, version))
    if collisions:
        pairs = "; ".join(f"{a!r} and {b!r}" for a, b in collisions[:5])
        print(f"kit: warning: {path}: participants now compared as the same person were kept apart "
              f"({pairs}{'; ...' if len(collisions) > 5 else ''}); files and uploads under either name "
              "go to the first", file=sys.stderr)


def _statements(script):
    """The statements of a migration script (no semicolons inside them, comments included)."""
    parts = [part.strip() for part in script.split(";") if part.strip()]
    if not all(sqlite3.complete_statement(part + ";") for part in parts):
        raise RuntimeError("a migration statement is incomplete: a ';' inside a comment or string?")
    return parts
