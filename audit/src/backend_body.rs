// Shared by postgres.rs and sqlite.rs through `include!`: the SQL is the same
// on both databases except where each module's `LOCK_HEAD`,
// `slot_condition` and `contains_condition` say otherwise. Each includer defines `Db`, `DbPool`.

use crate::error::StoreError;
use crate::record::{Access, AuditRecord, Call, CallEnd, CallId, Event, Turn};
use crate::schema::{self, record_hash, ColType, Table, Value, GENESIS_HASH};
use crate::store::{
    AppendOutcome, CallDetail, CallFilter, CallPage, CallSummary, ChainHead, ChainRow, StateEntry,
    TurnRow,
};
use sqlx::{AssertSqlSafe, Row};
use std::collections::HashMap;

type Args = <Db as sqlx::Database>::Arguments;
type DbRow = <Db as sqlx::Database>::Row;
type Q<'q> = sqlx::query::Query<'q, Db, Args>;

fn bind_value(q: Q<'_>, v: Value) -> Q<'_> {
    match v {
        Value::I64(x) => q.bind(x),
        Value::F64(x) => q.bind(x),
        Value::Text(x) => q.bind(x),
    }
}

/// Rows per multi-row INSERT: keeps binds far below SQLite's 32,766 and
/// PostgreSQL's 65,535 parameters (the widest table has 21 columns).
const ROWS_PER_INSERT: usize = 500;

fn placeholders(first: usize, n: usize) -> String {
    let p: Vec<String> = (first..first + n).map(placeholder).collect();
    format!("({})", p.join(", "))
}

fn insert_sql(table: &Table, rows: usize) -> String {
    let cols: Vec<&str> = table.cols.iter().map(|c| c.0).collect();
    let width = cols.len() + 4;
    let values: Vec<String> = (0..rows).map(|r| placeholders(1 + r * width, width)).collect();
    format!(
        "INSERT INTO {} (chain_id, chain_seq, prev_hash, hash, {}) VALUES {} ON CONFLICT ({}) DO NOTHING",
        table.name,
        cols.join(", "),
        values.join(", "),
        table.key.join(", ")
    )
}

/// The natural key of a row as values, for duplicate detection.
fn key_values(table: &Table, values: &[Value]) -> Vec<Value> {
    table
        .key
        .iter()
        .map(|k| {
            let i = table.cols.iter().position(|c| c.0 == *k).expect("key is a column");
            values[i].clone()
        })
        .collect()
}

fn key_string(key: &[Value]) -> String {
    format!("{key:?}")
}

fn select_cols(table: &Table, alias: &str) -> String {
    table
        .cols
        .iter()
        .map(|c| format!("{alias}.{}", c.0))
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_values(row: &DbRow, table: &Table, start: usize) -> Result<Vec<Value>, StoreError> {
    table
        .cols
        .iter()
        .enumerate()
        .map(|(i, (_, ty))| {
            let i = start + i;
            Ok(match ty {
                ColType::I64 => Value::I64(row.try_get::<Option<i64>, _>(i)?),
                ColType::F64 => Value::F64(row.try_get::<Option<f64>, _>(i)?),
                ColType::Text => Value::Text(row.try_get::<Option<String>, _>(i)?),
            })
        })
        .collect()
}

fn decode<T>(
    table: &Table,
    values: &[Value],
    pick: impl FnOnce(AuditRecord) -> Option<T>,
) -> Result<T, StoreError> {
    pick(AuditRecord::from_values(table, values)?).ok_or(StoreError::BadColumn { column: "table" })
}

struct Pending {
    table: &'static Table,
    chain: String,
    seq: i64,
    prev: String,
    hash: String,
    values: Vec<Value>,
}

/// Appends in one transaction with a handful of statements per batch: the
/// chain heads in one SELECT, the keys already stored in one SELECT per
/// table, the rows in multi-row INSERTs, the new heads in one upsert.
async fn append_records(pool: &DbPool, records: &[AuditRecord]) -> Result<AppendOutcome, StoreError> {
    if records.is_empty() {
        return Ok(AppendOutcome::default());
    }
    let mut tx = pool.begin().await?;
    let mut out = AppendOutcome::default();

    // Chain heads, locked (PostgreSQL) for the rest of the transaction.
    let mut chains: Vec<String> = records.iter().map(AuditRecord::chain_id).collect();
    chains.sort();
    chains.dedup();
    let mut heads: HashMap<String, (i64, String)> = HashMap::new();
    for chunk in chains.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "SELECT chain_id, chain_seq, hash FROM audit_chain_heads WHERE chain_id IN {}{LOCK_HEAD}",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for c in chunk {
            q = q.bind(c.clone());
        }
        for row in q.fetch_all(&mut *tx).await? {
            heads.insert(row.try_get(0)?, (row.try_get(1)?, row.try_get(2)?));
        }
    }

    // Natural keys already stored (a replay, or a retry after a lost commit).
    let mut stored: HashMap<&'static str, std::collections::HashSet<String>> = HashMap::new();
    for table in schema::TABLES {
        let keys: Vec<Vec<Value>> = records
            .iter()
            .filter(|r| std::ptr::eq(r.table(), table))
            .map(|r| key_values(table, &r.values()))
            .collect();
        let set = stored.entry(table.name).or_default();
        for chunk in keys.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "SELECT {} FROM {} WHERE {}",
                table.key.join(", "),
                table.name,
                keys_condition(table.key, chunk.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for k in chunk.iter().flatten() {
                q = bind_value(q, k.clone());
            }
            for row in q.fetch_all(&mut *tx).await? {
                let key: Vec<Value> = table
                    .key
                    .iter()
                    .enumerate()
                    .map(|(i, k)| {
                        let ty = table.cols.iter().find(|c| c.0 == *k).expect("key is a column").1;
                        Ok(match ty {
                            ColType::I64 => Value::I64(row.try_get::<Option<i64>, _>(i)?),
                            ColType::F64 => Value::F64(row.try_get::<Option<f64>, _>(i)?),
                            ColType::Text => Value::Text(row.try_get::<Option<String>, _>(i)?),
                        })
                    })
                    .collect::<Result<_, StoreError>>()?;
                set.insert(key_string(&key));
            }
        }
    }

    // Chain the new records in order.
    let mut pending: Vec<Pending> = Vec::with_capacity(records.len());
    let mut advanced: HashMap<String, (i64, String)> = HashMap::new();
    for record in records {
        let table = record.table();
        let values = record.values();
        let key = key_string(&key_values(table, &values));
        if !stored.get_mut(table.name).expect("every table").insert(key) {
            out.duplicates += 1;
            continue;
        }
        let chain = record.chain_id();
        let (head_seq, head_hash) = advanced
            .get(&chain)
            .or_else(|| heads.get(&chain))
            .cloned()
            .unwrap_or((-1, GENESIS_HASH.to_owned()));
        let seq = head_seq + 1;
        let hash = record_hash(table, &chain, seq, &head_hash, &values);
        advanced.insert(chain.clone(), (seq, hash.clone()));
        pending.push(Pending { table, chain, seq, prev: head_hash, hash, values });
    }

    // Insert, table by table (order within a transaction does not matter).
    for table in schema::TABLES {
        let rows: Vec<&Pending> = pending.iter().filter(|p| std::ptr::eq(p.table, table)).collect();
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut q = sqlx::query(AssertSqlSafe(insert_sql(table, chunk.len())));
            for p in chunk {
                q = q.bind(p.chain.clone()).bind(p.seq).bind(p.prev.clone()).bind(p.hash.clone());
                for v in &p.values {
                    q = bind_value(q, v.clone());
                }
            }
            let n = q.execute(&mut *tx).await?.rows_affected();
            if n != chunk.len() as u64 {
                // Another writer stored some of these keys since we looked:
                // give up the whole batch; the retry will skip them.
                return Err(StoreError::ConcurrentWrite {
                    table: table.name,
                    rows: chunk.len() - n as usize,
                });
            }
            out.inserted += chunk.len();
        }
    }

    let advanced: Vec<(String, (i64, String))> = advanced.into_iter().collect();
    for chunk in advanced.chunks(ROWS_PER_INSERT) {
        let values: Vec<String> = (0..chunk.len()).map(|i| placeholders(1 + i * 3, 3)).collect();
        let sql = format!(
            "INSERT INTO audit_chain_heads (chain_id, chain_seq, hash) VALUES {} \
             ON CONFLICT (chain_id) DO UPDATE SET chain_seq = excluded.chain_seq, hash = excluded.hash",
            values.join(", ")
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (chain, (seq, hash)) in chunk {
            q = q.bind(chain.clone()).bind(*seq).bind(hash.clone());
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(out)
}

async fn list_calls_impl(pool: &DbPool, filter: &CallFilter) -> Result<CallPage, StoreError> {
    let mut conds: Vec<String> = Vec::new();
    let mut binds: Vec<Value> = Vec::new();
    let param = |v: Value, binds: &mut Vec<Value>| {
        binds.push(v);
        format!("${}", binds.len())
    };
    if let Some(from) = filter.from_unix_us {
        let p = param(Value::I64(Some(from)), &mut binds);
        conds.push(format!("c.started_unix_us >= {p}"));
    }
    if let Some(to) = filter.to_unix_us {
        let p = param(Value::I64(Some(to)), &mut binds);
        conds.push(format!("c.started_unix_us < {p}"));
    }
    // A parameter may appear more than once: `$N` names one bind on both
    // databases.
    if let Some(number) = &filter.number {
        let p = param(Value::Text(Some(number.clone())), &mut binds);
        conds.push(format!(
            "({} OR {})",
            contains_condition("c.caller", &p),
            contains_condition("c.called", &p)
        ));
    }
    if let Some(outcome) = filter.outcome {
        let p = param(Value::Text(Some(outcome.as_str().to_owned())), &mut binds);
        conds.push(format!("e.outcome = {p}"));
    }
    for (key, value) in &filter.slots {
        let k = param(Value::Text(Some(key.clone())), &mut binds);
        let v = param(Value::Text(Some(value.clone())), &mut binds);
        conds.push(slot_condition(&k, &v));
    }
    if let Some(route) = &filter.route {
        let p = param(Value::Text(Some(route.clone())), &mut binds);
        conds.push(format!("c.route = {p}"));
    }
    if let Some(text) = &filter.text {
        let p = param(Value::Text(Some(text.clone())), &mut binds);
        conds.push(format!(
            "({} OR {} OR {} OR EXISTS (SELECT 1 FROM audit_turns t WHERE t.call_id = c.call_id AND ({} OR {})))",
            contains_condition("c.caller", &p),
            contains_condition("c.called", &p),
            contains_condition("e.final_slots", &p),
            contains_condition("t.raw_text", &p),
            contains_condition("t.corrected_text", &p),
        ));
    }
    let limit = filter.effective_limit();
    let where_ = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    let sql = format!(
        "SELECT {}, {} FROM audit_calls c LEFT JOIN audit_call_ends e ON e.call_id = c.call_id \
         {where_} ORDER BY c.started_unix_us DESC, c.call_id LIMIT {} OFFSET {}",
        select_cols(&schema::CALLS, "c"),
        select_cols(&schema::CALL_ENDS, "e"),
        limit as u64 + 1,
        filter.offset
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for b in binds {
        q = bind_value(q, b);
    }
    let rows = q.fetch_all(pool).await?;
    let more = rows.len() > limit as usize;
    let mut calls = Vec::with_capacity(rows.len().min(limit as usize));
    for row in rows.iter().take(limit as usize) {
        let cv = read_values(row, &schema::CALLS, 0)?;
        let ev = read_values(row, &schema::CALL_ENDS, schema::CALLS.cols.len())?;
        let call: Call = decode(&schema::CALLS, &cv, |r| match r {
            AuditRecord::Call(c) => Some(c),
            _ => None,
        })?;
        let end = if matches!(ev[0], Value::Text(Some(_))) {
            Some(decode(&schema::CALL_ENDS, &ev, |r| match r {
                AuditRecord::CallEnd(e) => Some(e),
                _ => None,
            })?)
        } else {
            None
        };
        calls.push(CallSummary { call, end });
    }
    Ok(CallPage {
        calls,
        next_offset: more.then_some(filter.offset + limit as u64),
    })
}

async fn fetch_table(
    pool: &DbPool,
    table: &Table,
    call_id: &CallId,
) -> Result<Vec<Vec<Value>>, StoreError> {
    let order = if table.key.len() > 1 { " ORDER BY t.seq" } else { "" };
    let sql = format!(
        "SELECT {} FROM {} t WHERE t.call_id = $1{order}",
        select_cols(table, "t"),
        table.name
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(call_id.0.clone())
        .fetch_all(pool)
        .await?;
    rows.iter().map(|r| read_values(r, table, 0)).collect()
}

async fn get_call_impl(pool: &DbPool, call_id: &CallId) -> Result<Option<CallDetail>, StoreError> {
    let Some(cv) = fetch_table(pool, &schema::CALLS, call_id).await?.pop() else {
        return Ok(None);
    };
    let call: Call = decode(&schema::CALLS, &cv, |r| match r {
        AuditRecord::Call(c) => Some(c),
        _ => None,
    })?;
    let end: Option<CallEnd> = match fetch_table(pool, &schema::CALL_ENDS, call_id).await?.pop() {
        Some(ev) => Some(decode(&schema::CALL_ENDS, &ev, |r| match r {
            AuditRecord::CallEnd(e) => Some(e),
            _ => None,
        })?),
        None => None,
    };
    let turns = fetch_table(pool, &schema::TURNS, call_id)
        .await?
        .iter()
        .map(|v| {
            decode(&schema::TURNS, v, |r| match r {
                AuditRecord::Turn(t) => Some(t),
                _ => None,
            })
        })
        .collect::<Result<Vec<Turn>, _>>()?;
    let events = fetch_table(pool, &schema::EVENTS, call_id)
        .await?
        .iter()
        .map(|v| {
            decode(&schema::EVENTS, v, |r| match r {
                AuditRecord::Event(e) => Some(e),
                _ => None,
            })
        })
        .collect::<Result<Vec<Event>, _>>()?;
    Ok(Some(CallDetail { call, end, turns, events }))
}

async fn list_access_impl(pool: &DbPool, limit: u32, offset: u64) -> Result<Vec<Access>, StoreError> {
    let sql = format!(
        "SELECT {} FROM audit_access a ORDER BY a.at_unix_us DESC, a.chain_seq DESC LIMIT {} OFFSET {offset}",
        select_cols(&schema::ACCESS, "a"),
        crate::store::access_limit(limit)
    );
    let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            decode(&schema::ACCESS, &read_values(row, &schema::ACCESS, 0)?, |r| match r {
                AuditRecord::Access(a) => Some(a),
                _ => None,
            })
        })
        .collect()
}

/// The chained rows of every table, or of one chain only.
async fn list_turns_impl(
    pool: &DbPool,
    from_unix_us: Option<i64>,
    to_unix_us: Option<i64>,
    limit: u32,
) -> Result<Vec<TurnRow>, StoreError> {
    let mut conds: Vec<&str> = Vec::new();
    if from_unix_us.is_some() {
        conds.push("c.started_unix_us >= $1");
    }
    if to_unix_us.is_some() {
        conds.push(if from_unix_us.is_some() { "c.started_unix_us < $2" } else { "c.started_unix_us < $1" });
    }
    let where_ = if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) };
    let sql = format!(
        "SELECT c.started_unix_us, c.route, e.outcome, {} FROM audit_turns t \
         JOIN audit_calls c ON c.call_id = t.call_id \
         LEFT JOIN audit_call_ends e ON e.call_id = t.call_id \
         {where_} ORDER BY c.started_unix_us, t.call_id, t.seq LIMIT {}",
        select_cols(&schema::TURNS, "t"),
        crate::store::turns_limit(limit)
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for bound in [from_unix_us, to_unix_us].into_iter().flatten() {
        q = q.bind(bound);
    }
    let rows = q.fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            let turn: Turn = decode(&schema::TURNS, &read_values(row, &schema::TURNS, 3)?, |r| match r {
                AuditRecord::Turn(t) => Some(t),
                _ => None,
            })?;
            let outcome: Option<String> = row.try_get(2)?;
            Ok(TurnRow {
                call_id: turn.call_id.clone(),
                call_started_unix_us: row.try_get(0)?,
                route: row.try_get(1)?,
                outcome: outcome.map(|o| o.parse()).transpose()?,
                turn,
            })
        })
        .collect()
}

async fn chain_rows_impl(pool: &DbPool, chain_id: Option<&str>) -> Result<Vec<ChainRow>, StoreError> {
    let mut out = Vec::new();
    for table in schema::TABLES {
        let where_ = if chain_id.is_some() { " WHERE t.chain_id = $1" } else { "" };
        let sql = format!(
            "SELECT chain_id, chain_seq, prev_hash, hash, {} FROM {} t{where_}",
            select_cols(table, "t"),
            table.name
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        if let Some(chain_id) = chain_id {
            q = q.bind(chain_id.to_owned());
        }
        let rows = q.fetch_all(pool).await?;
        for row in &rows {
            out.push(ChainRow {
                table,
                chain_id: row.try_get(0)?,
                chain_seq: row.try_get(1)?,
                prev_hash: row.try_get(2)?,
                hash: row.try_get(3)?,
                values: read_values(row, table, 4)?,
            });
        }
    }
    Ok(out)
}

async fn chain_heads_impl(pool: &DbPool) -> Result<Vec<ChainHead>, StoreError> {
    let rows: Vec<(String, i64, String)> =
        sqlx::query_as("SELECT chain_id, chain_seq, hash FROM audit_chain_heads")
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(chain_id, chain_seq, hash)| ChainHead { chain_id, chain_seq, hash })
        .collect())
}

async fn chain_head_of_impl(pool: &DbPool, chain_id: &str) -> Result<Option<ChainHead>, StoreError> {
    let row: Option<(String, i64, String)> =
        sqlx::query_as("SELECT chain_id, chain_seq, hash FROM audit_chain_heads WHERE chain_id = $1")
            .bind(chain_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(chain_id, chain_seq, hash)| ChainHead { chain_id, chain_seq, hash }))
}

fn now_unix_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

fn state_entry(row: &DbRow) -> Result<StateEntry, StoreError> {
    let value: String = row.try_get(2)?;
    Ok(StateEntry {
        kind: row.try_get(0)?,
        key: row.try_get(1)?,
        value: serde_json::from_str(&value)
            .map_err(|source| StoreError::Json { column: "value", source })?,
        updated_unix_us: row.try_get(3)?,
    })
}

async fn state_get_impl(pool: &DbPool, kind: &str, key: &str) -> Result<Option<StateEntry>, StoreError> {
    let row = sqlx::query(
        "SELECT kind, key, value, updated_unix_us FROM console_state WHERE kind = $1 AND key = $2",
    )
    .bind(kind)
    .bind(key)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(state_entry).transpose()
}

async fn state_list_impl(pool: &DbPool, kind: &str) -> Result<Vec<StateEntry>, StoreError> {
    let rows = sqlx::query(
        "SELECT kind, key, value, updated_unix_us FROM console_state WHERE kind = $1 ORDER BY key",
    )
    .bind(kind)
    .fetch_all(pool)
    .await?;
    rows.iter().map(state_entry).collect()
}

async fn state_put_impl(
    pool: &DbPool,
    kind: &str,
    key: &str,
    value: &serde_json::Value,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO console_state (kind, key, value, updated_unix_us) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, updated_unix_us = excluded.updated_unix_us",
    )
    .bind(kind)
    .bind(key)
    .bind(value.to_string())
    .bind(now_unix_us())
    .execute(pool)
    .await?;
    Ok(())
}

async fn state_delete_impl(pool: &DbPool, kind: &str, key: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM console_state WHERE kind = $1 AND key = $2")
        .bind(kind)
        .bind(key)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

async fn state_count_impl(pool: &DbPool, kind: &str) -> Result<u64, StoreError> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM console_state WHERE kind = $1")
        .bind(kind)
        .fetch_one(pool)
        .await?;
    Ok(n as u64)
}

/// Implements [`crate::AuditStore`] for a struct with a `pool: DbPool` field.
macro_rules! impl_audit_store {
    ($store:ty, $backend:expr) => {
        #[async_trait::async_trait]
        impl crate::store::AuditStore for $store {
            fn backend(&self) -> crate::store::Backend {
                $backend
            }
            async fn append(
                &self,
                records: &[crate::record::AuditRecord],
            ) -> Result<crate::store::AppendOutcome, crate::error::StoreError> {
                append_records(&self.pool, records).await
            }
            async fn list_calls(
                &self,
                filter: &crate::store::CallFilter,
            ) -> Result<crate::store::CallPage, crate::error::StoreError> {
                list_calls_impl(&self.pool, filter).await
            }
            async fn get_call(
                &self,
                call_id: &crate::record::CallId,
            ) -> Result<Option<crate::store::CallDetail>, crate::error::StoreError> {
                get_call_impl(&self.pool, call_id).await
            }
            async fn list_access(
                &self,
                limit: u32,
                offset: u64,
            ) -> Result<Vec<crate::record::Access>, crate::error::StoreError> {
                list_access_impl(&self.pool, limit, offset).await
            }
            async fn list_turns(
                &self,
                from_unix_us: Option<i64>,
                to_unix_us: Option<i64>,
                limit: u32,
            ) -> Result<Vec<crate::store::TurnRow>, crate::error::StoreError> {
                list_turns_impl(&self.pool, from_unix_us, to_unix_us, limit).await
            }
            async fn chain_rows(
                &self,
            ) -> Result<Vec<crate::store::ChainRow>, crate::error::StoreError> {
                chain_rows_impl(&self.pool, None).await
            }
            async fn chain_heads(
                &self,
            ) -> Result<Vec<crate::store::ChainHead>, crate::error::StoreError> {
                chain_heads_impl(&self.pool).await
            }
            async fn chain_rows_of(
                &self,
                chain_id: &str,
            ) -> Result<Vec<crate::store::ChainRow>, crate::error::StoreError> {
                chain_rows_impl(&self.pool, Some(chain_id)).await
            }
            async fn chain_head_of(
                &self,
                chain_id: &str,
            ) -> Result<Option<crate::store::ChainHead>, crate::error::StoreError> {
                chain_head_of_impl(&self.pool, chain_id).await
            }
            async fn state_get(
                &self,
                kind: &str,
                key: &str,
            ) -> Result<Option<crate::store::StateEntry>, crate::error::StoreError> {
                state_get_impl(&self.pool, kind, key).await
            }
            async fn state_list(
                &self,
                kind: &str,
            ) -> Result<Vec<crate::store::StateEntry>, crate::error::StoreError> {
                state_list_impl(&self.pool, kind).await
            }
            async fn state_put(
                &self,
                kind: &str,
                key: &str,
                value: &serde_json::Value,
            ) -> Result<(), crate::error::StoreError> {
                state_put_impl(&self.pool, kind, key, value).await
            }
            async fn state_delete(
                &self,
                kind: &str,
                key: &str,
            ) -> Result<bool, crate::error::StoreError> {
                state_delete_impl(&self.pool, kind, key).await
            }
            async fn state_count(&self, kind: &str) -> Result<u64, crate::error::StoreError> {
                state_count_impl(&self.pool, kind).await
            }
            async fn ping(&self) -> Result<(), crate::error::StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }
            async fn close(&self) {
                self.pool.close().await;
            }
        }
    };
}
