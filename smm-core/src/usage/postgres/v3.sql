-- The PostgreSQL ledger, schema version 3 (from version 2): the fast
-- path's two calls made set-based, and the load answering arrays. Tables
-- are unchanged.
--
-- Version 2 read and wrote a batch's state one row at a time (a lock, a
-- lookup, an update per workspace, job or run). A statement in a function
-- costs its executor start-up (for a table with CHECK constraints, parsing
-- them again) whatever rows it touches, so a batch cost about twenty
-- statements; here it costs seven, whatever it holds. Each lookup stays a
-- lookup by key: a LATERAL subquery with a LIMIT is planned as an index
-- probe per outer row (it cannot be turned into a join that scans), and
-- `id = ANY (array)` is an index scan of the primary key.

-- Part 1 (in the caller's transaction, which keeps the locks until it
-- ends): lock the workspaces given and those of the runs given, in key
-- order; lapse the holds expired at p_sweep_now (NULL: no sweep); answer
-- the state the batch's operations read, column by column (arrays, not
-- JSON: building and reading JSON cost more than the lookups): the runs
-- given (id, workspace, job, state, expiry, day, month, kinds and amounts
-- comma-separated), the live runs of the jobs given (workspace, job, id,
-- state), the quotas of every workspace (workspace, kind, period, limit;
-- in kind, period order within a workspace), and the totals (workspace,
-- kind, period, index, committed, reserved) of the kinds given, held or
-- with a quota, in the days and months given or of the runs given, and
-- all time. Every total the batch may touch is there, or does not exist.
DROP FUNCTION smm_batch_load(TEXT[], TEXT[], BIGINT[], TEXT[], BIGINT[], BIGINT[], BIGINT);
CREATE FUNCTION smm_batch_load(p_ws TEXT[], p_jobs TEXT[], p_ids BIGINT[], p_kinds TEXT[],
                               p_days BIGINT[], p_months BIGINT[], p_sweep_now BIGINT,
  OUT r_id BIGINT[], OUT r_ws TEXT[], OUT r_job TEXT[], OUT r_state TEXT[], OUT r_expires BIGINT[],
  OUT r_day BIGINT[], OUT r_month BIGINT[], OUT r_kinds TEXT[], OUT r_amounts TEXT[],
  OUT l_ws TEXT[], OUT l_job TEXT[], OUT l_id BIGINT[], OUT l_state TEXT[],
  OUT q_ws TEXT[], OUT q_kind TEXT[], OUT q_period TEXT[], OUT q_limit BIGINT[],
  OUT t_ws TEXT[], OUT t_kind TEXT[], OUT t_period TEXT[], OUT t_index BIGINT[],
  OUT t_committed BIGINT[], OUT t_reserved BIGINT[])
LANGUAGE plpgsql AS $$
BEGIN
  -- The locks, one after the other in key order (a subquery with an ORDER
  -- BY is never merged into the query around it, so the calls run in its
  -- order). A run's workspace never changes: reading it before its lock
  -- is safe.
  PERFORM pg_advisory_xact_lock(l.k)
     FROM (SELECT DISTINCT smm_ledger_key(w) AS k
             FROM unnest(p_ws || ARRAY(SELECT a.workspace_id FROM agent_runs a
                                        WHERE a.id = ANY (p_ids))) AS w
            ORDER BY 1) AS l;
  IF p_sweep_now IS NOT NULL
     AND EXISTS (SELECT 1 FROM agent_runs WHERE state = 'active' AND expires_at <= p_sweep_now) THEN
    PERFORM smm_sweep(p_sweep_now);
  END IF;
  WITH runs AS MATERIALIZED (
    SELECT a.id, a.workspace_id, a.job_id, a.state, a.expires_at, a.day, a.month, a.kinds, a.amounts
      FROM agent_runs a WHERE a.id = ANY (p_ids)
  ), spaces AS MATERIALIZED (
    SELECT DISTINCT w FROM (SELECT unnest(p_ws) UNION ALL SELECT workspace_id FROM runs) AS x (w)
  ), quotas AS MATERIALIZED (
    SELECT s.w, q.quota_type, q.period, q.limit_value,
           row_number() OVER (ORDER BY s.w, q.quota_type COLLATE "C", q.period COLLATE "C") AS n
      FROM spaces s,
           LATERAL (SELECT q.quota_type, q.period, q.limit_value FROM workspace_quotas q
                     WHERE q.workspace_id = s.w LIMIT ALL OFFSET 0) AS q
  ), wanted AS MATERIALIZED (
    SELECT ARRAY(SELECT DISTINCT k FROM (SELECT unnest(p_kinds)
                                         UNION ALL SELECT unnest(kinds) FROM runs
                                         UNION ALL SELECT quota_type FROM quotas) AS x (k)) AS kinds,
           ARRAY(SELECT unnest(p_days) UNION SELECT day FROM runs) AS days,
           ARRAY(SELECT unnest(p_months) UNION SELECT month FROM runs) AS months
  ), live AS MATERIALIZED (
    SELECT x.ws, x.job, a.id, a.state
      FROM unnest(p_ws, p_jobs) AS x (ws, job),
           LATERAL (SELECT a.id, a.state FROM agent_runs a
                     WHERE a.workspace_id = x.ws AND a.job_id = x.job
                       AND a.state IN ('active', 'committed') LIMIT 1) AS a
  ), totals AS MATERIALIZED (
    SELECT s.w, t.kind, t.period, t.period_index, t.committed, t.reserved
      FROM spaces s, wanted,
           LATERAL (SELECT t.kind, t.period, t.period_index, t.committed, t.reserved
                      FROM usage_totals t
                     WHERE t.workspace_id = s.w AND t.kind = ANY (wanted.kinds)
                       AND ((t.period = 'day' AND t.period_index = ANY (wanted.days))
                         OR (t.period = 'month' AND t.period_index = ANY (wanted.months))
                         OR (t.period = 'total' AND t.period_index = 0))
                     LIMIT ALL OFFSET 0) AS t
  )
  SELECT r.i, r.w, r.j, r.s, r.e, r.d, r.m, r.k, r.a, l.w, l.j, l.i, l.s,
         q.w, q.k, q.p, q.l, t.w, t.k, t.p, t.i, t.c, t.r
    INTO r_id, r_ws, r_job, r_state, r_expires, r_day, r_month, r_kinds, r_amounts,
         l_ws, l_job, l_id, l_state, q_ws, q_kind, q_period, q_limit,
         t_ws, t_kind, t_period, t_index, t_committed, t_reserved
    FROM (SELECT coalesce(array_agg(id), '{}') AS i, coalesce(array_agg(workspace_id), '{}') AS w,
                 coalesce(array_agg(job_id), '{}') AS j, coalesce(array_agg(state), '{}') AS s,
                 coalesce(array_agg(expires_at), '{}') AS e, coalesce(array_agg(day), '{}') AS d,
                 coalesce(array_agg(month), '{}') AS m,
                 coalesce(array_agg(array_to_string(kinds, ',')), '{}') AS k,
                 coalesce(array_agg(array_to_string(amounts, ',')), '{}') AS a
            FROM runs) AS r,
         (SELECT coalesce(array_agg(ws), '{}') AS w, coalesce(array_agg(job), '{}') AS j,
                 coalesce(array_agg(id), '{}') AS i, coalesce(array_agg(state), '{}') AS s
            FROM live) AS l,
         (SELECT coalesce(array_agg(w ORDER BY n), '{}') AS w,
                 coalesce(array_agg(quota_type ORDER BY n), '{}') AS k,
                 coalesce(array_agg(period ORDER BY n), '{}') AS p,
                 coalesce(array_agg(limit_value ORDER BY n), '{}') AS l
            FROM quotas) AS q,
         (SELECT coalesce(array_agg(w), '{}') AS w, coalesce(array_agg(kind), '{}') AS k,
                 coalesce(array_agg(period), '{}') AS p, coalesce(array_agg(period_index), '{}') AS i,
                 coalesce(array_agg(committed), '{}') AS c, coalesce(array_agg(reserved), '{}') AS r
            FROM totals) AS t;
END $$;

-- Part 2 (the same transaction, its locks still held): write what the
-- batch did, one statement for each kind of write. Runs' new states first
-- (a job released here may be reserved again below), then the new runs
-- (their ids from the sequence, in order: the answer), the totals
-- (absolute values), and the usage records. Kinds and amounts of a new
-- run are comma-separated.
CREATE OR REPLACE FUNCTION smm_batch_apply(
  p_r_id BIGINT[], p_r_state TEXT[], p_r_expired BOOLEAN[], p_r_breached TEXT[],
  p_n_ws TEXT[], p_n_job TEXT[], p_n_created BIGINT[], p_n_expires BIGINT[], p_n_day BIGINT[],
  p_n_month BIGINT[], p_n_kinds TEXT[], p_n_amounts TEXT[],
  p_t_ws TEXT[], p_t_kind TEXT[], p_t_period TEXT[], p_t_index BIGINT[], p_t_committed BIGINT[],
  p_t_reserved BIGINT[],
  p_u_ws TEXT[], p_u_job TEXT[], p_u_run BIGINT[], p_u_kind TEXT[], p_u_amount BIGINT[],
  p_u_at BIGINT[], p_u_day BIGINT[], p_u_month BIGINT[], p_u_expired BOOLEAN[]) RETURNS BIGINT[]
LANGUAGE plpgsql AS $$
DECLARE
  v_ids BIGINT[] := '{}';
BEGIN
  IF cardinality(p_r_id) > 0 THEN
    -- (A run appears once in p_r_id: its position finds its new state.)
    UPDATE agent_runs a
       SET state = p_r_state[array_position(p_r_id, a.id)],
           expired = p_r_expired[array_position(p_r_id, a.id)],
           breached = p_r_breached[array_position(p_r_id, a.id)]
     WHERE a.id = ANY (p_r_id);
  END IF;
  IF cardinality(p_n_ws) > 0 THEN
    v_ids := ARRAY(SELECT nextval('agent_runs_id_seq') FROM generate_series(1, cardinality(p_n_ws)));
    INSERT INTO agent_runs (id, workspace_id, job_id, created_at, expires_at, day, month, state, kinds, amounts)
    SELECT v_ids[n.i], n.ws, n.job, n.created, n.expires, n.day, n.month, 'active',
           string_to_array(n.kinds, ','), string_to_array(n.amounts, ',')::BIGINT[]
      FROM unnest(p_n_ws, p_n_job, p_n_created, p_n_expires, p_n_day, p_n_month, p_n_kinds, p_n_amounts)
           WITH ORDINALITY AS n (ws, job, created, expires, day, month, kinds, amounts, i);
  END IF;
  IF cardinality(p_t_ws) > 0 THEN
    INSERT INTO usage_totals AS t (workspace_id, kind, period, period_index, committed, reserved)
    SELECT * FROM unnest(p_t_ws, p_t_kind, p_t_period, p_t_index, p_t_committed, p_t_reserved)
    ON CONFLICT (workspace_id, kind, period, period_index) DO UPDATE SET
      committed = excluded.committed, reserved = excluded.reserved;
  END IF;
  IF cardinality(p_u_ws) > 0 THEN
    INSERT INTO model_usage (workspace_id, job_id, run_id, kind, amount, committed_at, day, month, expired)
    SELECT * FROM unnest(p_u_ws, p_u_job, p_u_run, p_u_kind, p_u_amount, p_u_at, p_u_day, p_u_month,
                         p_u_expired);
  END IF;
  RETURN v_ids;
END $$;
