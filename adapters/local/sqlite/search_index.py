"""The search index in SQLite: FTS5 tables of analyzed terms, ranked by the shared BM25F scorer."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from toolrt.adapters.local.sqlite.database import SqliteStore
from toolrt.adapters.local.sqlite.derived import (
    CONTENT,
    PUBLIC_SCOPE,
    fill_search_index,
    owner_scope,
    scope_of,
    team_scope,
)
from toolrt.domain.search import FIELD_WEIGHTS, FIELDS, CorpusStats, SearchDocument, rank
from toolrt.ports import SearchHit, SearchQuery

# Which query terms find candidates (see search()): those in at most this many public tools, or
# this share of them; all terms when none is that rare.
RARE_TERM_MIN_DOCS = 100
RARE_TERM_SHARE = 0.01


class SqliteSearchIndex(SqliteStore):
    """Searches the FTS5 index the tool records' transactions keep (a :class:`~toolrt.ports.SearchIndex`),
    and checks or rebuilds it (``toolrt doctor``)."""

    def search(self, query: SearchQuery) -> Sequence[SearchHit]:
        """Candidates from FTS5, then BM25F over the statistics of exactly the visible tools.

        Public candidates: the best by FTS5's own rank (its statistics are the public tools', which
        everyone may see), several times the limit, found through the query's rarer terms. Private
        candidates: the agent's own non-public tools and the team tools of its teams (``scope``
        tokens AND the terms). The visible statistics: public totals and fts5vocab counts plus the
        totals and per-term counts of those scopes; other agents' private tools, and the tools of
        teams the agent is not in, are never read, and move no score.
        """
        if not query.terms:
            return []
        weights = ", ".join(str(FIELD_WEIGHTS[name]) for name in FIELDS)
        candidates = max(query.limit * 5, 50)
        # The agent's scopes: its own token and those of its teams. A non-public tool's scope
        # column holds its owner's token and, for team tools, its team's: it matches once.
        scopes: list[str] | None = None
        if query.visible_to is not None:
            scopes = [owner_scope(query.visible_to), *(team_scope(t) for t in sorted(query.teams))]
        scope = None if scopes is None else "(" + " OR ".join(f'"{token}"' for token in scopes) + ")"

        def run(conn: sqlite3.Connection) -> tuple[list[Any], CorpusStats]:
            marks = ", ".join("?" * len(query.terms))
            public_df: dict[str, int] = dict(
                conn.execute(f"SELECT term, doc FROM search_public_vocab WHERE term IN ({marks})", query.terms)
            )
            public_totals = conn.execute(
                "SELECT documents, name, description, params, tags FROM search_totals WHERE scope = ?", (PUBLIC_SCOPE,)
            ).fetchone() or (0, 0, 0, 0, 0)
            if scope is None:
                private_totals = conn.execute(
                    "SELECT total(documents), total(name), total(description), total(params), total(tags)"
                    " FROM search_totals WHERE scope != ?",
                    (PUBLIC_SCOPE,),
                ).fetchone()
            else:
                assert scopes is not None
                teams = ", ".join("?" * (len(scopes) - 1))
                private_totals = conn.execute(
                    "SELECT total(documents), total(name), total(description), total(params), total(tags)"
                    f" FROM search_totals WHERE scope != ? AND (owner = ? OR team IN ({teams}))",
                    (PUBLIC_SCOPE, *scopes),
                ).fetchone()
            within = "" if scope is None else f"scope : {scope} AND "
            private_df: dict[str, int] = {}
            if private_totals[0]:
                for term in query.terms:
                    (count,) = conn.execute(
                        "SELECT count(*) FROM search_private WHERE search_private MATCH ?",
                        (f'{within}{CONTENT} : "{term}"',),
                    ).fetchone()
                    if count:
                        private_df[term] = int(count)
            rows: list[Any] = []
            # Candidates come from the rarer terms: a term in most tools adds little to any score and
            # would make FTS5 rank most of the table. Every term still counts in the scores below.
            present = [t for t in query.terms if public_df.get(t)]
            rare = [t for t in present if public_df[t] <= max(RARE_TERM_MIN_DOCS, public_totals[0] * RARE_TERM_SHARE)]
            tags_sql = " AND rowid IN (SELECT t.rowid FROM tools t JOIN tool_tags g USING (tool_id) WHERE g.tag = ?)"
            tags_sql *= len(query.tags)
            if present:
                public_sql = (
                    "SELECT rowid, name, description, params, tags FROM search_public WHERE search_public MATCH ?"
                    f"{tags_sql} ORDER BY bm25(search_public, {weights}) LIMIT ?"
                )
                match = " OR ".join(f'"{term}"' for term in (rare or present))
                found = conn.execute(public_sql, (match, *query.tags, candidates)).fetchall()
                if rare and len(found) < candidates and len(rare) < len(present):
                    # Few tools hold the rare terms: fill up with those holding only common ones.
                    every = " OR ".join(f'"{term}"' for term in present)
                    seen = {row[0] for row in found}
                    more = conn.execute(public_sql, (every, *query.tags, candidates)).fetchall()
                    found += [row for row in more if row[0] not in seen][: candidates - len(found)]
                rows += found
            if private_totals[0]:
                # Every match in the agent's scopes (its own and its teams'), unordered: ordering or
                # cutting them by FTS5's bm25() would let the statistics of other agents' private
                # tools (the same table) decide which are scored. The owner's view sees all anyway.
                # The same rare-first choice, made with the visible statistics only.
                visible_docs = public_totals[0] + private_totals[0]
                seen_df = {t: public_df.get(t, 0) + private_df.get(t, 0) for t in query.terms}
                own_rare = [
                    t
                    for t in query.terms
                    if private_df.get(t) and seen_df[t] <= max(RARE_TERM_MIN_DOCS, visible_docs * RARE_TERM_SHARE)
                ]
                words = " OR ".join(f'"{term}"' for term in (own_rare or query.terms))
                match = f"{within}{CONTENT} : ({words})"
                private_sql = f"SELECT rowid, name, description, params, tags FROM search_private WHERE search_private MATCH ?{tags_sql}"
                if scope is None:
                    private_sql += f" ORDER BY bm25(search_private, 0, {weights}) LIMIT {int(candidates)}"
                own = conn.execute(private_sql, (match, *query.tags)).fetchall()
                if scope is not None and own_rare and len(own) < candidates:
                    # Room left: the agent's tools holding only common terms, in storage order (an
                    # order that owes nothing to anyone else's tools).
                    every = " OR ".join(f'"{term}"' for term in query.terms)
                    seen = {row[0] for row in own}
                    more = conn.execute(
                        private_sql + " ORDER BY rowid LIMIT ?",
                        (f"{within}{CONTENT} : ({every})", *query.tags, candidates + len(seen)),
                    ).fetchall()
                    own += [row for row in more if row[0] not in seen][: candidates - len(own)]
                rows += own
            if rows:
                rowids = ", ".join(str(int(row[0])) for row in rows)
                ids = dict(conn.execute(f"SELECT rowid, tool_id FROM tools WHERE rowid IN ({rowids})").fetchall())
                rows = [(ids[row[0]], *row[1:]) for row in rows if row[0] in ids]
            frequency = {t: public_df.get(t, 0) + private_df.get(t, 0) for t in query.terms}
            totals = [a + b for a, b in zip(public_totals, private_totals, strict=True)]
            total = sum(FIELD_WEIGHTS[name] * count for name, count in zip(FIELDS, totals[1:], strict=True))
            return rows, CorpusStats(int(totals[0]), total, frequency)

        rows, stats = self._db.read("searching tools", run)
        documents = [SearchDocument.from_columns(row[0], row[1:]) for row in rows]
        ranked = rank(query.terms, documents, stats, query.limit)
        wanted = [document.tool_id for document, _ in ranked]  # bodies only for what is returned
        marks = ", ".join("?" * len(wanted))
        bodies = dict(
            self._db.read(
                "reading found tools",
                lambda c: c.execute(f"SELECT tool_id, body FROM tools WHERE tool_id IN ({marks})", wanted).fetchall(),
            )
        )
        hits = []
        for document, score in ranked:
            if document.tool_id not in bodies:
                continue
            tool = self._db.tool(document.tool_id, bodies[document.tool_id])
            # Visibility is decided on the record returned, read in the statement that reads its
            # body: a tool made private (or withdrawn) since its index entry was read is left out.
            if tool.is_active and (query.visible_to is None or tool.can_discover(query.visible_to, query.teams)):
                hits.append(SearchHit(tool, score))
        return hits

    def rebuild_search_index(self) -> int:
        """Rebuild the search index from the tool records (``toolrt doctor --repair``); the count indexed."""
        with self._db.write("rebuilding the search index") as conn:
            return fill_search_index(conn, self._db.decode)

    def search_index_problems(self) -> list[str]:
        """What differs between the search index and the tool records (empty when consistent)."""

        def check(conn: sqlite3.Connection) -> list[str]:
            expected: dict[int, str] = {}
            for rowid, owner, visibility, team in conn.execute(
                "SELECT rowid, owner, visibility, team FROM tools WHERE status = 'active'"
            ):
                expected[rowid] = PUBLIC_SCOPE if visibility == "public" else scope_of(owner, team)
            indexed = {rowid: PUBLIC_SCOPE for (rowid,) in conn.execute("SELECT rowid FROM search_public")}
            for rowid, scope in conn.execute("SELECT rowid, scope FROM search_private"):
                indexed[rowid] = scope if rowid not in indexed else "twice"
            problems: list[str] = []
            missing = [r for r in expected if r not in indexed]
            if missing:
                problems.append(f"{len(missing)} active tool(s) missing from the search index")
            wrong = [r for r, scope in indexed.items() if expected.get(r) != scope]
            if wrong:
                problems.append(f"{len(wrong)} search index entr(y/ies) for tools that are gone, inactive or moved")
            counts: dict[str, int] = {}
            for scope in indexed.values():
                counts[scope] = counts.get(scope, 0) + 1
            totals = {scope: n for scope, n in conn.execute("SELECT scope, documents FROM search_totals") if n}
            if totals != counts:
                problems.append("the search index's totals do not match its entries")
            return problems

        return self._db.read("checking the search index", check)
