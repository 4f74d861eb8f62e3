//! Raw SQL against a store's database, for tests that tamper with rows or
//! look under the store (not part of `support`, which the gateway's tests
//! include without sqlx).

use echo_audit::DatabaseUrl;

/// Runs `sql` on the database behind `url`.
pub async fn exec(url: &DatabaseUrl, sql: &str) {
    if url.scheme() == "sqlite" {
        let pool = sqlx::SqlitePool::connect(url.expose()).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url.expose()).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
}
