-- genedx database schema (DuckDB). Data flows one way: HPO files -> knowledge base -> cases ->
-- predictions -> grades. Every statement is idempotent.
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);

-- Knowledge base (rebuilt as a whole by `genedx data build`).
CREATE TABLE IF NOT EXISTS hpo_term (
    id VARCHAR PRIMARY KEY, label VARCHAR, definition VARCHAR, synonyms VARCHAR[],
    obsolete BOOLEAN, replaced_by VARCHAR, alt_ids VARCHAR[], parents VARCHAR[]);
-- Any id a case may carry (current, alt, obsolete) -> the current term it stands for.
CREATE TABLE IF NOT EXISTS hpo_id_map (id VARCHAR PRIMARY KEY, term VARCHAR, kind VARCHAR);
-- Transitive closure of is_a, self included (distance 0).
CREATE TABLE IF NOT EXISTS hpo_ancestor (term VARCHAR, ancestor VARCHAR, distance INTEGER);
CREATE TABLE IF NOT EXISTS gene (
    symbol VARCHAR PRIMARY KEY, hgnc_id VARCHAR, entrez_id INTEGER, name VARCHAR,
    aliases VARCHAR[], prev_symbols VARCHAR[], in_hpo BOOLEAN);
CREATE TABLE IF NOT EXISTS disease (id VARCHAR PRIMARY KEY, name VARCHAR);
-- frequency: probability in [0, 1] when the release gives one, else NULL.
CREATE TABLE IF NOT EXISTS disease_phenotype (
    disease VARCHAR, term VARCHAR, frequency DOUBLE, excluded BOOLEAN, onset VARCHAR, aspect VARCHAR,
    reference VARCHAR);
CREATE TABLE IF NOT EXISTS gene_disease (gene VARCHAR, disease VARCHAR);

-- Cases.
CREATE TABLE IF NOT EXISTS "case" (
    id VARCHAR PRIMARY KEY, source VARCHAR, sex VARCHAR, age VARCHAR, gene VARCHAR,
    disease VARCHAR, disease_label VARCHAR, publication VARCHAR, cohort VARCHAR,
    origin VARCHAR, imported_at TIMESTAMP DEFAULT current_timestamp);
CREATE TABLE IF NOT EXISTS case_phenotype (case_id VARCHAR, term VARCHAR, excluded BOOLEAN);
-- The stored split of each case (never recomputed silently).
CREATE TABLE IF NOT EXISTS case_split (
    case_id VARCHAR PRIMARY KEY, split VARCHAR, split_by VARCHAR, seed INTEGER,
    created_at TIMESTAMP DEFAULT current_timestamp);
-- Problems met on import, one row per case and problem.
CREATE TABLE IF NOT EXISTS import_issue (
    origin VARCHAR, record VARCHAR, problem VARCHAR, logged_at TIMESTAMP DEFAULT current_timestamp);

-- Runs: evaluations, scoring batches, training runs.
CREATE TABLE IF NOT EXISTS run (
    id VARCHAR PRIMARY KEY, kind VARCHAR, name VARCHAR, predictor VARCHAR, config JSON,
    hpo_release VARCHAR, model_dir VARCHAR, status VARCHAR,
    started_at TIMESTAMP DEFAULT current_timestamp, finished_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS metric (
    run_id VARCHAR, step INTEGER, split VARCHAR, name VARCHAR, value DOUBLE, lo DOUBLE, hi DOUBLE);
CREATE TABLE IF NOT EXISTS prediction (
    run_id VARCHAR, case_id VARCHAR, rank INTEGER, symbol VARCHAR, score DOUBLE, output VARCHAR);
CREATE TABLE IF NOT EXISTS grade (
    run_id VARCHAR, case_id VARCHAR, correct_answer VARCHAR, grade DOUBLE, rank INTEGER,
    well_formed BOOLEAN, source VARCHAR);

-- Sample completions of training runs (train rollouts and greedy validation outputs), for inspection.
CREATE TABLE IF NOT EXISTS completion_sample (
    run_id VARCHAR, step INTEGER, split VARCHAR, case_id VARCHAR, prompt VARCHAR, completion VARCHAR,
    correct_answer VARCHAR, reward DOUBLE);
