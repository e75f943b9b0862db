//! Checks that the entity crate and the migrations agree: after `Migrator::up`, every
//! entity's table exists with exactly the entity's columns (in order) and primary key, and
//! rows of every column type round-trip through the entities, on SQLite (model databases
//! attached) and, when `TEST_DATABASE_URL` is set, on PostgreSQL.

mod common;

use common::{columns, open_sqlite, primary_key, with_fresh_postgres};
use migration::sea_orm::entity::prelude::*;
use migration::sea_orm::{ActiveValue, DatabaseConnection, Iterable, PrimaryKeyToColumn};
use migration::{Migrator, MigratorTrait};

/// Checks that the table of `E` has exactly the columns and primary key of `E`.
async fn check<E: EntityTrait + Default>(db: &DatabaseConnection) {
    let e = E::default();
    let schema = e.schema_name().unwrap().to_owned();
    let table = e.table_name().to_owned();
    let want: Vec<String> = E::Column::iter().map(|c| c.as_str().to_owned()).collect();
    assert_eq!(
        columns(db, &schema, &table).await,
        want,
        "columns of {schema}.{table}"
    );
    let key: Vec<String> = E::PrimaryKey::iter()
        .map(|k| k.into_column().as_str().to_owned())
        .collect();
    assert_eq!(
        primary_key(db, &schema, &table).await,
        key,
        "key of {schema}.{table}"
    );
}

/// Checks all the entities of the crate.
async fn check_all(db: &DatabaseConnection) {
    check::<entity::saas::global_events::Entity>(db).await;
    check::<entity::saas::users::Entity>(db).await;
    check::<entity::saas::shops::Entity>(db).await;
    check::<entity::saas::plans::Entity>(db).await;
    check::<entity::saas::invoices::Entity>(db).await;
    check::<entity::saas::payments::Entity>(db).await;
    check::<entity::gym::dim_branch::Entity>(db).await;
    check::<entity::gym::dim_user::Entity>(db).await;
    check::<entity::gym::fct_credit_pack_purchases::Entity>(db).await;
    check::<entity::gym::fct_membership_purchases::Entity>(db).await;
    check::<entity::shop::customer::Entity>(db).await;
    check::<entity::shop::product_category::Entity>(db).await;
    check::<entity::shop::product::Entity>(db).await;
    check::<entity::shop::campaign::Entity>(db).await;
    check::<entity::shop::order_line::Entity>(db).await;
    check::<entity::shop::inventory_event::Entity>(db).await;
    check::<entity::shop::inventory_snapshot::Entity>(db).await;
    check::<entity::social::user::Entity>(db).await;
    check::<entity::social::content::Entity>(db).await;
    check::<entity::social::campaign::Entity>(db).await;
    check::<entity::social::device::Entity>(db).await;
    check::<entity::social::content_event::Entity>(db).await;
    check::<entity::social::ad_event::Entity>(db).await;
    check::<entity::web::addresses::Entity>(db).await;
    check::<entity::web::users::Entity>(db).await;
    check::<entity::web::products::Entity>(db).await;
    check::<entity::web::promos::Entity>(db).await;
    check::<entity::web::orders::Entity>(db).await;
    check::<entity::web::order_items::Entity>(db).await;
    check::<entity::web::events::Entity>(db).await;
}

/// A timestamp from RFC 3339.
fn ts(s: &str) -> DateTimeUtc {
    s.parse().unwrap()
}

/// Inserts one row through the entities into a table of each model (covering every column
/// type and nulls) and reads it back.
async fn round_trip(db: &DatabaseConnection) {
    use entity::{gym, saas, shop, social, web};

    let event = saas::global_events::Model {
        ts: "2024-03-01 09:00:00".into(),
        event_id: "e1".into(),
        event_time: ts("2024-03-01T09:30:00Z"),
        event_type: "user_account_creation".into(),
        metadata: r#"{"user_id": "u1", "email": "u1@example.com"}"#.parse().unwrap(),
    };
    saas::global_events::ActiveModel::from(event.clone())
        .insert(db)
        .await
        .unwrap();
    let back = saas::global_events::Entity::find_by_id((
        "2024-03-01 09:00:00".to_owned(),
        "e1".to_owned(),
    ))
    .one(db)
    .await
    .unwrap();
    assert_eq!(back, Some(event));

    let invoice = saas::invoices::Model {
        ds: "2024-03-01".parse().unwrap(),
        invoice_id: "i1".into(),
        user_id: "u1".into(),
        shop_id: "s1".into(),
        invoice_timestamp: ts("2024-03-01T10:00:00Z"),
        invoice_amount: "49.90".parse().unwrap(),
    };
    saas::invoices::ActiveModel::from(invoice.clone())
        .insert(db)
        .await
        .unwrap();
    let back = saas::invoices::Entity::find().all(db).await.unwrap();
    assert_eq!(back, vec![invoice]);

    let branch = gym::dim_branch::Model {
        branch_id: "b1".into(),
        name: "Central".into(),
        email: "central@example.com".into(),
        city: "London".into(),
        country: "GB".into(),
        timezone_id: "Europe/London".into(),
        created_at: ts("2023-01-01T00:00:00Z"),
    };
    gym::dim_branch::ActiveModel::from(branch.clone())
        .insert(db)
        .await
        .unwrap();
    let user = gym::dim_user::Model {
        user_id: "gu1".into(),
        branch_id: "b1".into(),
        name: "Ann".into(),
        email: "ann@example.com".into(),
        created_at: ts("2024-01-05T08:00:00Z"),
    };
    gym::dim_user::ActiveModel::from(user.clone())
        .insert(db)
        .await
        .unwrap();
    // A relation: the user's branch.
    let found = user
        .find_related(gym::dim_branch::Entity)
        .one(db)
        .await
        .unwrap();
    assert_eq!(found, Some(branch));

    let mut customer = shop::customer::Model {
        customer_id: "c1".into(),
        first_name: "Bo".into(),
        last_name: "Li".into(),
        email: "bo@example.com".into(),
        phone: None,
        city: "Austin".into(),
        state: Some("TX".into()),
        country: "US".into(),
        customer_age: Some(41),
        updated_at: ts("2024-01-01T00:00:00Z"),
        is_current: false,
    };
    shop::customer::ActiveModel::from(customer.clone())
        .insert(db)
        .await
        .unwrap();
    // A second version of the same business key (type-2 dimension).
    customer.updated_at = ts("2024-02-01T00:00:00Z");
    customer.is_current = true;
    customer.customer_age = None;
    shop::customer::ActiveModel::from(customer.clone())
        .insert(db)
        .await
        .unwrap();
    let current = shop::customer::Entity::find()
        .filter(shop::customer::Column::IsCurrent.eq(true))
        .all(db)
        .await
        .unwrap();
    assert_eq!(current, vec![customer]);

    let user = social::user::Model {
        user_id: "su1".into(),
        status: "churned".into(),
        name: "Cy".into(),
        email: "cy@example.com".into(),
        phone: Some("+1 555 0100".into()),
        created_at: ts("2024-01-01T12:00:00Z"),
        updated_at: ts("2024-03-01T12:00:00Z"),
        is_current: true,
        last_active_date: Some("2024-02-27".parse().unwrap()),
        churned_date: Some("2024-03-01".parse().unwrap()),
    };
    social::user::ActiveModel::from(user.clone())
        .insert(db)
        .await
        .unwrap();
    assert_eq!(
        social::user::Entity::find().all(db).await.unwrap(),
        vec![user]
    );

    // `web.users` next to `saas.users`: different tables, different columns.
    let saas_user = saas::users::ActiveModel {
        ts: ActiveValue::Set("2024-03-01 09:00:00".into()),
        user_id: ActiveValue::Set("u1".into()),
        creation_timestamp: ActiveValue::Set(ts("2024-03-01T09:30:00Z")),
    };
    saas_user.insert(db).await.unwrap();
    let web_user = web::users::Model {
        user_id: "wu1".into(),
        first_name: "Di".into(),
        last_name: "Ng".into(),
        email: "di@example.com".into(),
        phone_number: None,
        created_at: ts("2021-02-10T01:02:03Z"),
        updated_at: None,
        address_id: "a1".into(),
    };
    web::users::ActiveModel::from(web_user.clone())
        .insert(db)
        .await
        .unwrap();
    assert_eq!(
        web::users::Entity::find().all(db).await.unwrap(),
        vec![web_user]
    );
    assert_eq!(saas::users::Entity::find().count(db).await.unwrap(), 1);
    let item = web::order_items::Model {
        order_id: "o1".into(),
        product_id: "p1".into(),
        quantity: 3,
    };
    web::order_items::ActiveModel::from(item.clone())
        .insert(db)
        .await
        .unwrap();
    let back = web::order_items::Entity::find_by_id(("o1".to_owned(), "p1".to_owned()))
        .one(db)
        .await
        .unwrap();
    assert_eq!(back, Some(item));
}

#[tokio::test]
async fn sqlite_entities_match_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_sqlite(dir.path()).await;
    Migrator::up(&db, None).await.unwrap();
    check_all(&db).await;
    round_trip(&db).await;
    db.close().await.unwrap();
}

#[tokio::test]
async fn postgres_entities_match_migrations() {
    with_fresh_postgres(|db| async move {
        Migrator::up(&db, None).await.unwrap();
        check_all(&db).await;
        round_trip(&db).await;
        db.close().await.unwrap();
    })
    .await;
}
