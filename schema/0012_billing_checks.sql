-- 0012 the billing path's CHECKs as OR chains: the same rules, cheaper.
--
-- SQLite (3.40) evaluates `CHECK (x IN ('a', 'b', 'c', ...))` with more than
-- two values by building a temporary index of the values on every run of a
-- statement that checks it (EXPLAIN shows an OpenEphemeral), and a bill runs
-- four such statements: the invoice, its lines, its ledger entries and its
-- e-bill. `x = 'a' OR x = 'b' OR ...` is the same rule (same values, same
-- outcome for NULL, same affinity and collation) without the index. Other
-- IN lists are left as they are: the billing run does not evaluate them
-- (an UPDATE checks a CHECK only when it sets one of its columns) or they
-- have two values, which SQLite compares directly.
--
-- The constraints are changed in place, by the PRAGMA writable_schema
-- procedure SQLite documents for removing a CHECK
-- (https://www.sqlite.org/lang_altertable.html, "Making Other Kinds Of
-- Table Schema Changes"): the rows, their rowids, the indexes, the triggers
-- (invoices_issued_fixed, ledger_no_update, ...) and the foreign keys that
-- name these tables are not touched. Putting back the same rule is as safe
-- as removing it: every row satisfies it already. A rebuild of the tables
-- would copy every invoice, line and ledger entry and, as migrations run in
-- a transaction with foreign keys on, could not drop a table other tables
-- refer to.

-- What each CHECK was, exactly as 0003 and 0006 wrote it (line breaks and
-- indentation included), and what it becomes. A scratch table in main, not
-- temp: creating and dropping it changes main's schema_version, the step of
-- the procedure that makes every other open connection read the schema
-- again.
CREATE TABLE migration_0012 (
    name  TEXT PRIMARY KEY,
    old   TEXT NOT NULL,
    new   TEXT NOT NULL
);
INSERT INTO migration_0012 (name, old, new) VALUES
('invoices',
'CHECK (status IN (''draft'', ''open'', ''partially_paid'', ''paid'', ''void'', ''written_off''))',
'CHECK (status = ''draft'' OR status = ''open'' OR status = ''partially_paid'' OR status = ''paid''
                                          OR status = ''void'' OR status = ''written_off'')'),
('invoice_lines',
'CHECK (kind IN (''recurring'', ''addon'', ''one_time'', ''proration'', ''discount'',
                                                      ''deposit'', ''credit'', ''fee'', ''adjustment''))',
'CHECK (kind = ''recurring'' OR kind = ''addon'' OR kind = ''one_time'' OR kind = ''proration''
                                             OR kind = ''discount'' OR kind = ''deposit'' OR kind = ''credit'' OR kind = ''fee''
                                             OR kind = ''adjustment'')'),
('ledger_entries',
'CHECK (kind IN (''invoice'', ''payment'', ''credit_note'', ''adjustment'', ''refund'',
                                                  ''deposit_held'', ''deposit_returned'', ''deposit_forfeited'',
                                                  ''write_off''))',
'CHECK (kind = ''invoice'' OR kind = ''payment'' OR kind = ''credit_note'' OR kind = ''adjustment''
                                         OR kind = ''refund'' OR kind = ''deposit_held'' OR kind = ''deposit_returned''
                                         OR kind = ''deposit_forfeited'' OR kind = ''write_off'')'),
('outbox',
'CHECK (status IN (''pending'', ''sent'', ''failed'', ''dead''))',
'CHECK (status = ''pending'' OR status = ''sent'' OR status = ''failed'' OR status = ''dead'')');

PRAGMA writable_schema = ON;
UPDATE sqlite_schema AS s
SET sql = (SELECT replace(s.sql, m.old, m.new) FROM migration_0012 m WHERE m.name = s.name)
WHERE s.type = 'table' AND s.name IN (SELECT name FROM migration_0012);
-- RESET: off, and this connection reads the schema again (a CHECK is
-- compiled from the table's text in sqlite_schema, nowhere else)
PRAGMA writable_schema = RESET;

-- A table whose CHECK was not found as written (a schema changed by hand)
-- stops the migration: it rolls back and nothing is changed.
CREATE TEMP TRIGGER migration_0012_all BEFORE DELETE ON main.migration_0012
WHEN NOT EXISTS (SELECT 1 FROM sqlite_schema s
                 WHERE s.type = 'table' AND s.name = OLD.name AND instr(s.sql, OLD.new) > 0 AND instr(s.sql, OLD.old) = 0)
BEGIN
    SELECT RAISE(ABORT, 'a CHECK to rewrite is not as 0003/0006 created it (was the schema edited by hand?)');
END;
DELETE FROM migration_0012;
DROP TABLE migration_0012;
