-- The PostgreSQL ledger, schema version 2 (from version 1).
--
-- Every write is a server function, and a batch of writes is one call of
-- smm_ledger_batch: one round trip and one commit (one fsync) for every
-- operation a process has waiting. Writers lock only the workspaces they
-- touch (an advisory lock per workspace, taken in key order, so that two
-- batches never wait on each other in a cycle); reservation ids come from
-- a sequence; a run's amounts are kept on its row. The semantics are the
-- memory ledger's, answer for answer (the differential test runs both).

CREATE SEQUENCE agent_runs_id_seq AS BIGINT MINVALUE 1;
SELECT setval('agent_runs_id_seq', value, true)
  FROM ledger_counters WHERE name = 'agent_runs' AND value > 0;
DROP TABLE ledger_counters;

ALTER TABLE agent_runs
  ADD COLUMN kinds TEXT[] NOT NULL DEFAULT '{}',
  ADD COLUMN amounts BIGINT[] NOT NULL DEFAULT '{}';
UPDATE agent_runs r SET kinds = a.kinds, amounts = a.amounts
  FROM (SELECT run_id,
               array_agg(kind ORDER BY kind COLLATE "C") AS kinds,
               array_agg(amount ORDER BY kind COLLATE "C") AS amounts
          FROM agent_run_amounts GROUP BY run_id) a
 WHERE a.run_id = r.id;
ALTER TABLE agent_runs
  ALTER COLUMN kinds DROP DEFAULT,
  ALTER COLUMN amounts DROP DEFAULT,
  ADD CONSTRAINT agent_runs_amounts_match CHECK (cardinality(kinds) = cardinality(amounts));
DROP TABLE agent_run_amounts;
-- One hold or one commit per job, whoever writes.
CREATE UNIQUE INDEX agent_runs_one_live_per_job
  ON agent_runs (workspace_id, job_id) WHERE state IN ('active', 'committed');
-- (which also serves every lookup by job: a job's other runs are lapsed,
-- released or superseded, and nothing looks them up by job)
DROP INDEX agent_runs_by_job;

-- The advisory lock key of a workspace's books.
CREATE FUNCTION smm_ledger_key(p_ws TEXT) RETURNS BIGINT
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT hashtextextended(p_ws, 7365) $$;

-- Add committed and reserved (either may be negative) to the totals of
-- each kind of p_kinds (no two alike) for the day, the month and all
-- time, never below zero. The rows that exist are updated in one
-- statement; the few that do not yet (a kind's first use in a period)
-- are inserted (the caller holds the workspace's lock: no other writer
-- inserts them meanwhile). A total past a BIGINT fails the statement
-- (SQLSTATE 22003), and with it the batch: the ledger then names it.
CREATE FUNCTION smm_add_totals(p_ws TEXT, p_day BIGINT, p_month BIGINT, p_kinds TEXT[],
                               p_committed BIGINT[], p_reserved BIGINT[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_rows BIGINT;
BEGIN
  UPDATE usage_totals t
     SET committed = greatest(t.committed + d.c, 0), reserved = greatest(t.reserved + d.r, 0)
    FROM unnest(p_kinds, p_committed, p_reserved) AS d (k, c, r)
   WHERE t.workspace_id = p_ws AND t.kind = d.k
     AND (t.period, t.period_index) IN (('day', p_day), ('month', p_month), ('total', 0));
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  IF v_rows < 3 * cardinality(p_kinds) THEN
    INSERT INTO usage_totals (workspace_id, kind, period, period_index, committed, reserved)
    SELECT p_ws, d.k, p.period, p.idx, greatest(d.c, 0), greatest(d.r, 0)
      FROM unnest(p_kinds, p_committed, p_reserved) AS d (k, c, r)
     CROSS JOIN (VALUES ('day', p_day), ('month', p_month), ('total', 0::BIGINT)) AS p (period, idx)
    ON CONFLICT (workspace_id, kind, period, period_index) DO NOTHING;
  END IF;
END $$;

-- The same, for one run's hold given back.
CREATE FUNCTION smm_unhold(p_ws TEXT, p_day BIGINT, p_month BIGINT, p_kinds TEXT[],
                           p_amounts BIGINT[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM smm_add_totals(p_ws, p_day, p_month, p_kinds,
                         array_fill(0::BIGINT, ARRAY[cardinality(p_kinds)]),
                         ARRAY(SELECT -a FROM unnest(p_amounts) AS a));
END $$;

-- Lapse the holds expired at p_now (their amounts given back), in every
-- workspace this transaction holds or can take without waiting: a
-- workspace another writer holds is swept by a later write. A hold that
-- is not yet swept only makes a check stricter.
CREATE FUNCTION smm_sweep(p_now BIGINT) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_ws TEXT;
  v_run RECORD;
BEGIN
  FOR v_ws IN SELECT DISTINCT workspace_id FROM agent_runs
               WHERE state = 'active' AND expires_at <= p_now LOOP
    CONTINUE WHEN NOT pg_try_advisory_xact_lock(smm_ledger_key(v_ws));
    FOR v_run IN UPDATE agent_runs SET state = 'lapsed'
                  WHERE workspace_id = v_ws AND state = 'active' AND expires_at <= p_now
                  RETURNING day, month, kinds, amounts LOOP
      PERFORM smm_unhold(v_ws, v_run.day, v_run.month, v_run.kinds, v_run.amounts);
    END LOOP;
  END LOOP;
END $$;

-- A workspace's quotas (in kind, period order), each tightened by the
-- limit of the same kind and period in p_kinds/p_periods/p_limits (no
-- two alike), then the limits no quota has (in their order); each with
-- its committed and reserved totals of the period containing the day and
-- month given.
CREATE FUNCTION smm_standings(p_ws TEXT, p_day BIGINT, p_month BIGINT,
                              p_kinds TEXT[], p_periods TEXT[], p_limits BIGINT[])
RETURNS TABLE (q_kind TEXT, q_period TEXT, q_limit BIGINT, q_committed BIGINT, q_reserved BIGINT)
LANGUAGE sql STABLE AS $$
  SELECT m.k, m.p, m.l, coalesce(t.committed, 0), coalesce(t.reserved, 0)
    FROM (SELECT s.quota_type AS k, s.period AS p, least(s.limit_value, x.l) AS l,
                 0 AS g, 0::BIGINT AS ord
            FROM workspace_quotas s
            LEFT JOIN unnest(p_kinds, p_periods, p_limits) AS x (k, p, l)
              ON x.k = s.quota_type AND x.p = s.period
           WHERE s.workspace_id = p_ws
          UNION ALL
          SELECT x.k, x.p, x.l, 1, x.ord
            FROM unnest(p_kinds, p_periods, p_limits) WITH ORDINALITY AS x (k, p, l, ord)
           WHERE NOT EXISTS (SELECT 1 FROM workspace_quotas s
                              WHERE s.workspace_id = p_ws AND s.quota_type = x.k AND s.period = x.p)
         ) m
    LEFT JOIN usage_totals t
      ON t.workspace_id = p_ws AND t.kind = m.k AND t.period = m.p
     AND t.period_index = CASE m.p WHEN 'day' THEN p_day WHEN 'month' THEN p_month ELSE 0 END
   ORDER BY m.g, (CASE WHEN m.g = 0 THEN m.k END) COLLATE "C",
            (CASE WHEN m.g = 0 THEN m.p END) COLLATE "C", m.ord
$$;

-- Reserve (the caller holds the workspace's lock). Answers:
-- {"r":"job_committed"} | {"r":"job_active","id"} | {"r":"blocked","standings"}
-- | {"r":"held","id","standings"}; a standing is [kind, period, limit,
-- committed + reserved].
CREATE FUNCTION smm_reserve(p_ws TEXT, p_job TEXT, p_kinds TEXT[], p_amounts BIGINT[],
                            p_now BIGINT, p_day BIGINT, p_month BIGINT, p_expires BIGINT,
                            p_lkinds TEXT[], p_lperiods TEXT[], p_llimits BIGINT[]) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_run RECORD;
  v_q RECORD;
  v_standings jsonb := '[]';
  v_blocked BOOLEAN := false;
  v_want BIGINT;
  v_current NUMERIC;
  v_id BIGINT;
BEGIN
  IF EXISTS (SELECT 1 FROM agent_runs WHERE state = 'active' AND expires_at <= p_now) THEN
    PERFORM smm_sweep(p_now);
  END IF;
  SELECT id, state INTO v_run FROM agent_runs
   WHERE workspace_id = p_ws AND job_id = p_job AND state IN ('committed', 'active');
  IF FOUND THEN
    IF v_run.state = 'committed' THEN
      RETURN '{"r": "job_committed"}';
    END IF;
    RETURN jsonb_build_object('r', 'job_active', 'id', v_run.id);
  END IF;
  FOR v_q IN SELECT * FROM smm_standings(p_ws, p_day, p_month, p_lkinds, p_lperiods, p_llimits) LOOP
    v_current := v_q.q_committed::NUMERIC + v_q.q_reserved;
    v_standings := v_standings || jsonb_build_array(jsonb_build_array(v_q.q_kind, v_q.q_period, v_q.q_limit, v_current));
    v_want := p_amounts[array_position(p_kinds, v_q.q_kind)];
    IF v_want IS NOT NULL AND v_current + v_want > v_q.q_limit THEN
      v_blocked := true;
    END IF;
  END LOOP;
  IF v_blocked THEN
    RETURN jsonb_build_object('r', 'blocked', 'standings', v_standings);
  END IF;
  v_id := nextval('agent_runs_id_seq');
  INSERT INTO agent_runs (id, workspace_id, job_id, created_at, expires_at, day, month, state, kinds, amounts)
  VALUES (v_id, p_ws, p_job, p_now, p_expires, p_day, p_month, 'active', p_kinds, p_amounts);
  PERFORM smm_add_totals(p_ws, p_day, p_month, p_kinds,
                         array_fill(0::BIGINT, ARRAY[cardinality(p_kinds)]), p_amounts);
  RETURN jsonb_build_object('r', 'held', 'id', v_id, 'standings', v_standings);
END $$;

-- A committed run's receipt, answered again.
CREATE FUNCTION smm_receipt(p_run agent_runs) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
  RETURN jsonb_build_object(
    'r', 'receipt', 'id', p_run.id, 'job', p_run.job_id,
    'expired', p_run.expired, 'breached', p_run.breached,
    'amounts', coalesce((SELECT jsonb_object_agg(u.kind, u.amount) FROM model_usage u
                          WHERE u.workspace_id = p_run.workspace_id AND u.job_id = p_run.job_id), '{}'));
END $$;

-- Commit run p_run's actual usage (the caller holds its workspace's
-- lock). Answers: {"r":"unknown"} | a receipt of the job's earlier
-- commit ({"r":"receipt",...}) | {"r":"done","job","expired","breached"}.
CREATE FUNCTION smm_commit(p_run BIGINT, p_kinds TEXT[], p_amounts BIGINT[],
                           p_now BIGINT, p_day BIGINT, p_month BIGINT) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_run agent_runs;
  v_other agent_runs;
  v_has_other BOOLEAN := false;
  v_expired BOOLEAN;
  v_breached TEXT;
  v_kinds TEXT[];
BEGIN
  SELECT * INTO v_run FROM agent_runs WHERE id = p_run;
  IF NOT FOUND OR v_run.state = 'released' THEN
    RETURN '{"r": "unknown"}';
  END IF;
  IF v_run.state = 'committed' THEN
    RETURN smm_receipt(v_run);
  END IF;
  IF v_run.state = 'superseded' THEN
    SELECT * INTO v_other FROM agent_runs
     WHERE workspace_id = v_run.workspace_id AND job_id = v_run.job_id AND state = 'committed';
    IF FOUND THEN
      RETURN smm_receipt(v_other);
    END IF;
    RETURN '{"r": "unknown"}'; -- the commit's records were purged since
  END IF;
  IF v_run.state = 'lapsed' THEN
    -- One commit per job: another run of the job (a retry after this one
    -- lapsed) may be committed already, or may still hold. (An active
    -- run is its job's only live run: the unique index says so.)
    SELECT * INTO v_other FROM agent_runs
     WHERE workspace_id = v_run.workspace_id AND job_id = v_run.job_id
       AND state IN ('committed', 'active');
    v_has_other := FOUND;
    IF v_has_other AND v_other.state = 'committed' THEN
      UPDATE agent_runs SET state = 'superseded' WHERE id = p_run;
      RETURN smm_receipt(v_other);
    END IF;
    IF v_has_other THEN
      PERFORM smm_unhold(v_other.workspace_id, v_other.day, v_other.month, v_other.kinds, v_other.amounts);
      UPDATE agent_runs SET state = 'superseded' WHERE id = v_other.id;
    END IF;
  END IF;
  v_expired := v_run.state = 'lapsed' OR v_run.expires_at <= p_now;
  IF v_run.state = 'active' AND v_run.day = p_day AND v_run.month = p_month THEN
    -- The hold given back and the usage added in one statement.
    IF v_run.kinds = p_kinds THEN
      v_kinds := p_kinds;
    ELSE
      SELECT array_agg(k ORDER BY k COLLATE "C") INTO v_kinds
        FROM (SELECT unnest(v_run.kinds) UNION SELECT unnest(p_kinds)) AS u (k);
    END IF;
    PERFORM smm_add_totals(
      v_run.workspace_id, p_day, p_month, v_kinds,
      ARRAY(SELECT coalesce(p_amounts[array_position(p_kinds, k)], 0) FROM unnest(v_kinds) AS k),
      ARRAY(SELECT -coalesce(v_run.amounts[array_position(v_run.kinds, k)], 0) FROM unnest(v_kinds) AS k));
  ELSE
    IF v_run.state = 'active' THEN
      PERFORM smm_unhold(v_run.workspace_id, v_run.day, v_run.month, v_run.kinds, v_run.amounts);
    END IF;
    PERFORM smm_add_totals(v_run.workspace_id, p_day, p_month, p_kinds, p_amounts,
                           array_fill(0::BIGINT, ARRAY[cardinality(p_kinds)]));
  END IF;
  INSERT INTO model_usage (workspace_id, job_id, run_id, kind, amount, committed_at, day, month, expired)
  SELECT v_run.workspace_id, v_run.job_id, p_run, x.k, x.v, p_now, p_day, p_month, v_expired
    FROM unnest(p_kinds, p_amounts) AS x (k, v);
  SELECT coalesce(string_agg(s.q_kind || '/' || s.q_period, ';'), '') INTO v_breached
    FROM smm_standings(v_run.workspace_id, p_day, p_month, '{}', '{}', '{}') s
   WHERE s.q_committed > s.q_limit;
  UPDATE agent_runs SET state = 'committed', expired = v_expired, breached = v_breached
   WHERE id = p_run;
  RETURN jsonb_build_object('r', 'done', 'job', v_run.job_id, 'expired', v_expired, 'breached', v_breached);
END $$;

-- Give back run p_run (the caller holds its workspace's lock). Answers
-- {"r":"released"} | {"r":"unknown"}.
CREATE FUNCTION smm_release(p_run BIGINT) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_run agent_runs;
BEGIN
  SELECT * INTO v_run FROM agent_runs WHERE id = p_run;
  IF NOT FOUND OR v_run.state NOT IN ('active', 'lapsed') THEN
    RETURN '{"r": "unknown"}';
  END IF;
  IF v_run.state = 'active' THEN
    PERFORM smm_unhold(v_run.workspace_id, v_run.day, v_run.month, v_run.kinds, v_run.amounts);
  END IF;
  UPDATE agent_runs SET state = 'released' WHERE id = p_run;
  RETURN '{"r": "released"}';
END $$;

-- A batch of writes, in order, in the caller's transaction: first the
-- locks of every workspace it touches, in key order (so that batches
-- never wait on each other in a cycle); then each operation, its answer
-- (JSON) at the same place of the array returned. Operation i is
-- p_ops[i] ('reserve', 'commit' or 'release') with its arguments at i of
-- the other arrays (those it has no use for are ignored); a list of kinds
-- or amounts is comma-separated text ("tokens,cost_usd", "450,13500000").
CREATE FUNCTION smm_ledger_batch(p_ops TEXT[], p_ws TEXT[], p_jobs TEXT[], p_ids BIGINT[],
                                 p_kinds TEXT[], p_amounts TEXT[], p_now BIGINT[], p_day BIGINT[],
                                 p_month BIGINT[], p_expires BIGINT[], p_lkinds TEXT[],
                                 p_lperiods TEXT[], p_llimits TEXT[]) RETURNS TEXT[]
LANGUAGE plpgsql AS $$
DECLARE
  v_key BIGINT;
  v_answer jsonb;
  v_out TEXT[] := '{}';
BEGIN
  FOR v_key IN
    SELECT DISTINCT smm_ledger_key(w.ws) AS key FROM (
      SELECT x.ws FROM unnest(p_ops, p_ws) AS x (op, ws) WHERE x.op = 'reserve'
      UNION ALL
      SELECT a.workspace_id FROM agent_runs a
       WHERE a.id = ANY (p_ids) AND a.id > 0
    ) w ORDER BY key
  LOOP
    PERFORM pg_advisory_xact_lock(v_key);
  END LOOP;
  FOR i IN 1 .. cardinality(p_ops) LOOP
    v_answer := CASE p_ops[i]
      WHEN 'reserve' THEN smm_reserve(
        p_ws[i], p_jobs[i], string_to_array(p_kinds[i], ','),
        string_to_array(p_amounts[i], ',')::BIGINT[], p_now[i], p_day[i], p_month[i], p_expires[i],
        string_to_array(p_lkinds[i], ','), string_to_array(p_lperiods[i], ','),
        string_to_array(p_llimits[i], ',')::BIGINT[])
      WHEN 'commit' THEN smm_commit(
        p_ids[i], string_to_array(p_kinds[i], ','), string_to_array(p_amounts[i], ',')::BIGINT[],
        p_now[i], p_day[i], p_month[i])
      WHEN 'release' THEN smm_release(p_ids[i])
      ELSE '{"r": "bad_op"}'::jsonb
    END;
    v_out := array_append(v_out, v_answer::TEXT);
  END LOOP;
  RETURN v_out;
END $$;

-- The fast path of a batch, part 1 (in the caller's transaction, which
-- keeps the locks until it ends): lock the workspaces given and those of
-- the runs given, in key order; lapse the holds expired at p_sweep_now
-- (NULL: no sweep); answer, as JSON, the state the batch's operations
-- read: {"runs": [[id, workspace, job, state, expiresAt, day, month,
-- kinds, amounts]] (the runs given), "live": [[workspace, job, id,
-- state]] (the live runs of the jobs given), "quotas": [[workspace, kind,
-- period, limit]] (in kind, period order), "totals": [[workspace, kind,
-- period, index, committed, reserved]] (of the kinds given, held or with
-- a quota, in the days and months given or of the runs given, and all
-- time)}. Every total the batch may touch is there, or does not exist.
CREATE FUNCTION smm_batch_load(p_ws TEXT[], p_jobs TEXT[], p_ids BIGINT[], p_kinds TEXT[],
                               p_days BIGINT[], p_months BIGINT[], p_sweep_now BIGINT) RETURNS TEXT
LANGUAGE plpgsql AS $$
DECLARE
  v_key BIGINT;
  v_ws TEXT;
  v_all TEXT[] := '{}';
  v_kinds TEXT[] := p_kinds;
  v_days BIGINT[] := p_days;
  v_months BIGINT[] := p_months;
  v_run RECORD;
  v_runs jsonb := '[]';
  v_live jsonb := '[]';
  v_quotas jsonb := '[]';
  v_totals jsonb := '[]';
  v_row RECORD;
BEGIN
  -- (Each lookup below is by a key, one at a time: the batches are small,
  -- and a plan over arrays of unknown size would scan.) The workspaces of
  -- the runs given first (a run's workspace never changes), then the locks,
  -- then the sweep, then what the operations read.
  v_all := p_ws || ARRAY(SELECT a.workspace_id FROM agent_runs a WHERE a.id = ANY (p_ids));
  FOR v_key IN SELECT DISTINCT smm_ledger_key(w) AS k FROM unnest(v_all) AS w ORDER BY k LOOP
    PERFORM pg_advisory_xact_lock(v_key);
  END LOOP;
  IF p_sweep_now IS NOT NULL
     AND EXISTS (SELECT 1 FROM agent_runs WHERE state = 'active' AND expires_at <= p_sweep_now) THEN
    PERFORM smm_sweep(p_sweep_now);
  END IF;
  FOR v_run IN SELECT a.id, a.workspace_id, a.job_id, a.state, a.expires_at, a.day, a.month,
                      a.kinds, a.amounts
                 FROM agent_runs a WHERE a.id = ANY (p_ids) LOOP
    v_runs := v_runs || jsonb_build_array(jsonb_build_array(
      v_run.id, v_run.workspace_id, v_run.job_id, v_run.state, v_run.expires_at, v_run.day,
      v_run.month, v_run.kinds, v_run.amounts));
    v_kinds := v_kinds || v_run.kinds;
    v_days := array_append(v_days, v_run.day);
    v_months := array_append(v_months, v_run.month);
  END LOOP;
  FOR i IN 1 .. coalesce(cardinality(p_ws), 0) LOOP
    SELECT a.id, a.state INTO v_run FROM agent_runs a
     WHERE a.workspace_id = p_ws[i] AND a.job_id = p_jobs[i] AND a.state IN ('active', 'committed');
    IF FOUND THEN
      v_live := v_live || jsonb_build_array(jsonb_build_array(p_ws[i], p_jobs[i], v_run.id, v_run.state));
    END IF;
  END LOOP;
  FOR v_ws IN SELECT DISTINCT w FROM unnest(v_all) AS w LOOP
    FOR v_row IN SELECT q.quota_type, q.period, q.limit_value FROM workspace_quotas q
                  WHERE q.workspace_id = v_ws
                  ORDER BY q.quota_type COLLATE "C", q.period COLLATE "C" LOOP
      v_quotas := v_quotas || jsonb_build_array(jsonb_build_array(v_ws, v_row.quota_type, v_row.period, v_row.limit_value));
      v_kinds := array_append(v_kinds, v_row.quota_type);
    END LOOP;
  END LOOP;
  FOR v_ws IN SELECT DISTINCT w FROM unnest(v_all) AS w LOOP
    FOR v_row IN SELECT t.kind, t.period, t.period_index, t.committed, t.reserved FROM usage_totals t
                  WHERE t.workspace_id = v_ws AND t.kind = ANY (v_kinds)
                    AND ((t.period = 'day' AND t.period_index = ANY (v_days))
                      OR (t.period = 'month' AND t.period_index = ANY (v_months))
                      OR (t.period = 'total' AND t.period_index = 0)) LOOP
      v_totals := v_totals || jsonb_build_array(jsonb_build_array(
        v_ws, v_row.kind, v_row.period, v_row.period_index, v_row.committed, v_row.reserved));
    END LOOP;
  END LOOP;
  RETURN jsonb_build_object('runs', v_runs, 'live', v_live, 'quotas', v_quotas, 'totals', v_totals)::TEXT;
END $$;

-- The fast path, part 2 (the same transaction, its locks still held):
-- write what the batch did. Runs' new states first (a job released here
-- may be reserved again below), then the new runs (their ids from the
-- sequence, in order: the answer), the totals (absolute values), and the
-- usage records. Kinds and amounts of a new run are comma-separated.
CREATE FUNCTION smm_batch_apply(
  p_r_id BIGINT[], p_r_state TEXT[], p_r_expired BOOLEAN[], p_r_breached TEXT[],
  p_n_ws TEXT[], p_n_job TEXT[], p_n_created BIGINT[], p_n_expires BIGINT[], p_n_day BIGINT[],
  p_n_month BIGINT[], p_n_kinds TEXT[], p_n_amounts TEXT[],
  p_t_ws TEXT[], p_t_kind TEXT[], p_t_period TEXT[], p_t_index BIGINT[], p_t_committed BIGINT[],
  p_t_reserved BIGINT[],
  p_u_ws TEXT[], p_u_job TEXT[], p_u_run BIGINT[], p_u_kind TEXT[], p_u_amount BIGINT[],
  p_u_at BIGINT[], p_u_day BIGINT[], p_u_month BIGINT[], p_u_expired BOOLEAN[]) RETURNS BIGINT[]
LANGUAGE plpgsql AS $$
DECLARE
  v_ids BIGINT[];
BEGIN
  FOR i IN 1 .. coalesce(cardinality(p_r_id), 0) LOOP
    UPDATE agent_runs SET state = p_r_state[i], expired = p_r_expired[i], breached = p_r_breached[i]
     WHERE id = p_r_id[i];
  END LOOP;
  v_ids := ARRAY(SELECT nextval('agent_runs_id_seq') FROM generate_series(1, cardinality(p_n_ws)));
  IF cardinality(p_n_ws) > 0 THEN
    INSERT INTO agent_runs (id, workspace_id, job_id, created_at, expires_at, day, month, state, kinds, amounts)
    SELECT v_ids[n.i], n.ws, n.job, n.created, n.expires, n.day, n.month, 'active',
           string_to_array(n.kinds, ','), string_to_array(n.amounts, ',')::BIGINT[]
      FROM unnest(p_n_ws, p_n_job, p_n_created, p_n_expires, p_n_day, p_n_month, p_n_kinds, p_n_amounts)
           WITH ORDINALITY AS n (ws, job, created, expires, day, month, kinds, amounts, i);
  END IF;
  INSERT INTO usage_totals AS t (workspace_id, kind, period, period_index, committed, reserved)
  SELECT * FROM unnest(p_t_ws, p_t_kind, p_t_period, p_t_index, p_t_committed, p_t_reserved)
  ON CONFLICT (workspace_id, kind, period, period_index) DO UPDATE SET
    committed = excluded.committed, reserved = excluded.reserved;
  IF cardinality(p_u_ws) > 0 THEN
    INSERT INTO model_usage (workspace_id, job_id, run_id, kind, amount, committed_at, day, month, expired)
    SELECT * FROM unnest(p_u_ws, p_u_job, p_u_run, p_u_kind, p_u_amount, p_u_at, p_u_day, p_u_month,
                         p_u_expired);
  END IF;
  RETURN v_ids;
END $$;

-- Set a quota under its workspace's lock.
CREATE FUNCTION smm_set_quota(p_ws TEXT, p_kind TEXT, p_period TEXT, p_limit BIGINT) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(smm_ledger_key(p_ws));
  INSERT INTO workspace_quotas (workspace_id, quota_type, period, limit_value)
  VALUES (p_ws, p_kind, p_period, p_limit)
  ON CONFLICT (workspace_id, quota_type, period) DO UPDATE SET limit_value = excluded.limit_value;
END $$;
