//! How the model's enums are stored: as the text of their `as_str`, in `TEXT` columns on both
//! backends. Text that is none of an enum's values fails to decode, so a row is never read
//! as some default.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

use super::{ConversationStatus, Direction, Role, Status};

/// Stores each enum as `as_str` writes it and reads it back through `FromStr`.
macro_rules! stored_as_text {
    ($($kind:ident),*) => {$(
        impl<DB: Database> Type<DB> for $kind
        where
            str: Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: Database> Encode<'q, DB> for $kind
        where
            &'q str: Encode<'q, DB>,
        {
            fn encode_by_ref(&self, buf: &mut DB::ArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&str as Encode<'q, DB>>::encode(self.as_str(), buf)
            }
        }

        impl<'r, DB: Database> Decode<'r, DB> for $kind
        where
            &'r str: Decode<'r, DB>,
        {
            fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <&str as Decode<'r, DB>>::decode(value)?;
                text.parse()
                    .map_err(|()| format!("{text:?} is not a {}", stringify!($kind)).into())
            }
        }
    )*};
}

stored_as_text!(Role, Direction, Status, ConversationStatus);

#[cfg(test)]
mod tests {
    use sqlx::SqlitePool;

    use super::*;

    #[tokio::test]
    async fn every_value_reads_back_and_nothing_else_does() {
        let db = SqlitePool::connect("sqlite::memory:").await.unwrap();
        for status in Status::ALL.into_iter().chain([Status::Note]) {
            let read: Status = sqlx::query_scalar("SELECT $1")
                .bind(status)
                .fetch_one(&db)
                .await
                .unwrap();
            assert_eq!(read, status);
        }
        for role in [Role::Admin, Role::Agent] {
            let read: Role = sqlx::query_scalar("SELECT $1")
                .bind(role)
                .fetch_one(&db)
                .await
                .unwrap();
            assert_eq!(read, role);
        }
        for status in ConversationStatus::ALL {
            let read: ConversationStatus = sqlx::query_scalar("SELECT $1")
                .bind(status)
                .fetch_one(&db)
                .await
                .unwrap();
            assert_eq!(read, status);
        }
        assert!(
            sqlx::query_scalar::<_, ConversationStatus>("SELECT 'archived'")
                .fetch_one(&db)
                .await
                .is_err()
        );
        let stored: String = sqlx::query_scalar("SELECT $1")
            .bind(Direction::Inbound)
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(stored, "inbound");
        for unknown in ["'sideways'", "''", "NULL"] {
            let read = sqlx::query_scalar::<_, Direction>(sqlx::AssertSqlSafe(format!(
                "SELECT {unknown}"
            )))
            .fetch_one(&db)
            .await;
            assert!(read.is_err(), "{unknown} read as {read:?}");
        }
        let missing: Option<Role> = sqlx::query_scalar("SELECT NULL")
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(missing, None);
    }
}
