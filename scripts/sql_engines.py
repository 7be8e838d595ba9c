#!/usr/bin/env python3
"""Runs SegQL's emitted SQL on real engines and prints each query's member keys.

    python3 scripts/sql_engines.py MANIFEST.json

MANIFEST.json:
    {"tables": [{"name": "purchased", "source": "/abs/purchased.parquet"}, ...],
     "postgres_schema": "segql_t123",      # tables are created in this schema
     "mysql_prefix": "segql_t123_",        # and with this prefix in MariaDB/MySQL
     "queries": [{"id": "lapsed", "dialect": "postgres", "sql": "SELECT ..."}, ...]}

Every table is loaded from its Parquet file (read with DuckDB) into each engine the
queries name: DuckDB and SQLite in memory, PostgreSQL at $SEGQL_TEST_POSTGRES_URL,
MariaDB/MySQL at $SEGQL_TEST_MYSQL_URL (mysql://user:password@host:port/database).
Prints one JSON object: {"results": {id: {"keys": [...]} or {"error": "..."}},
"skipped": {dialect: reason}}. The loaded tables are dropped at the end.

Needs: pip install duckdb "psycopg[binary]" pymysql
"""

import datetime
import decimal
import json
import os
import sqlite3
import sys
import urllib.parse

import duckdb


def read_tables(manifest):
    """Each table as (columns [(name, duckdb type)], rows)."""
    con = duckdb.connect()
    tables = {}
    for table in manifest["tables"]:
        relation = con.read_parquet(table["source"])
        columns = list(zip(relation.columns, [str(t) for t in relation.types]))
        tables[table["name"]] = (columns, relation.fetchall())
    return tables


def sql_type(dialect, duck_type):
    if duck_type.endswith("[]"):
        return {"postgres": "TEXT[]", "mysql": "JSON", "sqlite": "TEXT"}[dialect]
    base = duck_type.split("(")[0]
    mapping = {
        "BIGINT": ("BIGINT", "BIGINT", "INTEGER"),
        "INTEGER": ("BIGINT", "BIGINT", "INTEGER"),
        "DOUBLE": ("DOUBLE PRECISION", "DOUBLE", "REAL"),
        "FLOAT": ("DOUBLE PRECISION", "DOUBLE", "REAL"),
        "VARCHAR": ("TEXT", "TEXT", "TEXT"),
        "BOOLEAN": ("BOOLEAN", "BOOLEAN", "INTEGER"),
        "TIMESTAMP": ("TIMESTAMP", "DATETIME(6)", "TEXT"),
        "TIMESTAMP WITH TIME ZONE": ("TIMESTAMP", "DATETIME(6)", "TEXT"),
        "DATE": ("DATE", "DATE", "TEXT"),
    }
    if base not in mapping:
        raise SystemExit(f"no mapping for the column type {duck_type}")
    return dict(zip(("postgres", "mysql", "sqlite"), mapping[base]))[dialect]


def value_for(dialect, value):
    if isinstance(value, list) and dialect != "postgres":
        return json.dumps(value)
    if isinstance(value, datetime.datetime):
        value = value.replace(tzinfo=None)
        if dialect == "sqlite":
            return value.isoformat(sep=" ")
    if isinstance(value, bool) and dialect == "sqlite":
        return int(value)
    return value


def plain(value):
    """A result cell as JSON: numbers stay numbers (decimals become floats), the rest text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, decimal.Decimal):
        return float(value)
    return str(value)


def run_queries(execute, queries, results):
    """Runs each query with `execute(sql) -> rows`; an error is that query's result."""
    for query in queries:
        try:
            rows = execute(query["sql"])
            results[query["id"]] = {
                "keys": [row[0] for row in rows],
                "rows": [[plain(v) for v in row] for row in rows],
            }
        except Exception as error:  # noqa: BLE001 - reported per query
            results[query["id"]] = {"error": str(error)}


def run_duckdb(manifest, queries, results):
    con = duckdb.connect()
    for table in manifest["tables"]:
        con.execute(
            f'CREATE TABLE "{table["name"]}" AS SELECT * FROM read_parquet(?)',
            [table["source"]],
        )
    run_queries(lambda sql: con.execute(sql).fetchall(), queries, results)


def run_sqlite(tables, queries, results):
    con = sqlite3.connect(":memory:")
    for name, (columns, rows) in tables.items():
        definition = ", ".join(f'"{c}" {sql_type("sqlite", t)}' for c, t in columns)
        con.execute(f'CREATE TABLE "{name}" ({definition})')
        marks = ", ".join("?" for _ in columns)
        con.executemany(
            f'INSERT INTO "{name}" VALUES ({marks})',
            [[value_for("sqlite", v) for v in row] for row in rows],
        )
    run_queries(lambda sql: con.execute(sql).fetchall(), queries, results)


def run_postgres(url, schema, tables, queries, results):
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        con.execute(f'CREATE SCHEMA "{schema}"')
        try:
            for name, (columns, rows) in tables.items():
                definition = ", ".join(
                    f'"{c}" {sql_type("postgres", t)}' for c, t in columns
                )
                con.execute(f'CREATE TABLE "{schema}"."{name}" ({definition})')
                names = ", ".join(f'"{c}"' for c, _ in columns)
                with con.cursor().copy(
                    f'COPY "{schema}"."{name}" ({names}) FROM STDIN'
                ) as copy:
                    for row in rows:
                        copy.write_row([value_for("postgres", v) for v in row])
            run_queries(lambda sql: con.execute(sql).fetchall(), queries, results)
        finally:
            con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def run_mysql(url, prefix, tables, queries, results):
    import pymysql

    parts = urllib.parse.urlparse(url)
    con = pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=urllib.parse.unquote(parts.username or "root"),
        password=urllib.parse.unquote(parts.password or ""),
        database=parts.path.lstrip("/") or "test",
        autocommit=True,
        charset="utf8mb4",
    )
    created = []
    try:
        with con.cursor() as cursor:
            for name, (columns, rows) in tables.items():
                table = f"{prefix}{name}"
                cursor.execute(f"DROP TABLE IF EXISTS `{table}`")
                definition = ", ".join(f"`{c}` {sql_type('mysql', t)}" for c, t in columns)
                cursor.execute(
                    f"CREATE TABLE `{table}` ({definition}) "
                    "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                )
                created.append(table)
                marks = ", ".join("%s" for _ in columns)
                cursor.executemany(
                    f"INSERT INTO `{table}` VALUES ({marks})",
                    [[value_for("mysql", v) for v in row] for row in rows],
                )

            def execute(sql):
                cursor.execute(sql)
                return cursor.fetchall()

            run_queries(execute, queries, results)
    finally:
        with con.cursor() as cursor:
            for table in created:
                cursor.execute(f"DROP TABLE IF EXISTS `{table}`")
        con.close()


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as file:
        manifest = json.load(file)
    by_dialect = {}
    for query in manifest["queries"]:
        by_dialect.setdefault(query["dialect"], []).append(query)
    tables = read_tables(manifest)
    results, skipped = {}, {}
    for dialect, queries in by_dialect.items():
        if dialect == "duckdb":
            run_duckdb(manifest, queries, results)
        elif dialect == "sqlite":
            run_sqlite(tables, queries, results)
        elif dialect == "postgres":
            url = os.environ.get("SEGQL_TEST_POSTGRES_URL")
            if url:
                run_postgres(url, manifest["postgres_schema"], tables, queries, results)
            else:
                skipped[dialect] = "SEGQL_TEST_POSTGRES_URL is not set"
        elif dialect == "mysql":
            url = os.environ.get("SEGQL_TEST_MYSQL_URL")
            if url:
                run_mysql(url, manifest["mysql_prefix"], tables, queries, results)
            else:
                skipped[dialect] = "SEGQL_TEST_MYSQL_URL is not set"
        else:
            skipped[dialect] = "no engine to run it on"
    json.dump({"results": results, "skipped": skipped}, sys.stdout)


if __name__ == "__main__":
    main()
