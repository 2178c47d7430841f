#include "controlplane/store.h"

#include <sqlite3.h>

#include <fstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "controlplane/migrations.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/controlplane/test_util.h"

namespace turnpike::controlplane {
namespace {

using ::testing::HasSubstr;
using ::turnpike::testing::TempDir;

constexpr Migration kTestMigrations[] = {
    {1, "0001_a.sql",
     "CREATE TABLE a (id INTEGER PRIMARY KEY, v INTEGER NOT NULL CHECK (v >= 0));"},
    {2, "0002_b.sql",
     "CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER NOT NULL REFERENCES a (id));"},
};

Store::Options Opts(const std::string& path) {
  Store::Options o;
  o.path = path;
  o.busy_timeout = absl::Milliseconds(200);
  return o;
}

absl::StatusOr<int64_t> Count(Store& store, const std::string& table) {
  int64_t n = -1;
  absl::Status s = store.Read([&](SqliteDb& db) -> absl::Status {
    auto v = db.QueryInt(absl::StrCat("SELECT count(*) FROM ", table));
    if (!v.ok()) return v.status();
    n = *v;
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return n;
}

TEST(StoreTest, EmbeddedMigrationsAreNumberedWithoutGaps) {
  ASSERT_FALSE(EmbeddedMigrations().empty());
  EXPECT_TRUE(CheckMigrationList(EmbeddedMigrations()).ok());
  EXPECT_EQ(std::string(EmbeddedMigrations()[0].name), "0001_initial.sql");
}

TEST(StoreTest, FreshDatabaseIsMigratedToNewestAndUsesWal) {
  TempDir dir;
  auto store = Store::Open(Opts(dir.File("t.db")), EmbeddedMigrations());
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->schema_version(), static_cast<int64_t>(EmbeddedMigrations().size()));
  absl::Status s = (*store)->Read([](SqliteDb& db) -> absl::Status {
    auto stmt = db.Prepare("PRAGMA journal_mode");
    EXPECT_TRUE(stmt.ok());
    EXPECT_TRUE(*stmt->Step());
    EXPECT_EQ(stmt->ColumnText(0), "wal");
    EXPECT_EQ(*db.QueryInt("PRAGMA synchronous"), 2);  // FULL
    EXPECT_EQ(*db.QueryInt("PRAGMA foreign_keys"), 1);
    EXPECT_EQ(*db.QueryInt("PRAGMA application_id"), kApplicationId);
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
}

TEST(StoreTest, MigrationsApplyIncrementallyAndReopenIsIdempotent) {
  TempDir dir;
  std::string path = dir.File("t.db");
  {
    auto store = Store::Open(Opts(path), absl::MakeConstSpan(kTestMigrations, 1));
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ((*store)->schema_version(), 1);
    ASSERT_TRUE(
        (*store)->Write([](SqliteDb& db) { return db.Exec("INSERT INTO a VALUES (1, 5)"); }).ok());
  }
  {
    auto store = Store::Open(Opts(path), kTestMigrations);
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ((*store)->schema_version(), 2);
    EXPECT_EQ(*Count(**store, "a"), 1);  // data survived
    EXPECT_EQ(*Count(**store, "b"), 0);
  }
  auto again = Store::Open(Opts(path), kTestMigrations);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->schema_version(), 2);
}

TEST(StoreTest, FailedMigrationRollsBackWholly) {
  TempDir dir;
  std::string path = dir.File("t.db");
  const Migration bad[] = {
      kTestMigrations[0],
      {2, "0002_bad.sql", "CREATE TABLE c (id INTEGER); INSERT INTO nope VALUES (1);"},
  };
  auto store = Store::Open(Opts(path), bad);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr("0002_bad.sql"));
  // Version 1 committed, version 2 left no trace.
  auto ok = Store::Open(Opts(path), absl::MakeConstSpan(kTestMigrations, 1));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)->schema_version(), 1);
  EXPECT_FALSE(Count(**ok, "c").ok());
}

TEST(StoreTest, RefusesDatabaseNewerThanBinary) {
  TempDir dir;
  std::string path = dir.File("t.db");
  { ASSERT_TRUE(Store::Open(Opts(path), kTestMigrations).ok()); }
  auto old = Store::Open(Opts(path), absl::MakeConstSpan(kTestMigrations, 1));
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(old.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(old.status().message(), HasSubstr("newer than this turnpike-control supports"));
}

TEST(StoreTest, RefusesFileThatIsNotADatabase) {
  TempDir dir;
  std::string path = dir.File("t.db");
  std::ofstream(path) << std::string(8192, 'x');
  auto store = Store::Open(Opts(path), kTestMigrations);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(store.status().message(), HasSubstr("not a SQLite database"));
}

TEST(StoreTest, RefusesForeignSqliteDatabase) {
  TempDir dir;
  std::string path = dir.File("t.db");
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(raw, "CREATE TABLE x (y); PRAGMA user_version = 7;", nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(raw);
  auto store = Store::Open(Opts(path), kTestMigrations);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("not created by turnpike-control"));
}

TEST(StoreTest, RefusesCorruptDatabase) {
  TempDir dir;
  std::string path = dir.File("t.db");
  {
    auto store = Store::Open(Opts(path), kTestMigrations);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)
                    ->Write([](SqliteDb& db) {
                      return db.Exec(
                          "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                          "WHERE i < 2000) INSERT INTO a SELECT i, i FROM n; "
                          "CREATE INDEX a_v ON a (v);");
                    })
                    .ok());
    // Closing the last connection checkpoints the WAL into the main file.
  }
  // Overwrite the middle of the file (table and index pages) with garbage.
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096 * 3);
    std::string junk(4096 * 4, '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  auto store = Store::Open(Opts(path), kTestMigrations);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr("corrupt"));
}

TEST(StoreTest, SecondOpenOfSameFileIsRefused) {
  TempDir dir;
  std::string path = dir.File("t.db");
  auto first = Store::Open(Opts(path), kTestMigrations);
  ASSERT_TRUE(first.ok());
  auto second = Store::Open(Opts(path), kTestMigrations);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr("in use by another turnpike-control"));
}

TEST(StoreTest, LockedByAnotherProcessIsUnavailableAfterBusyTimeout) {
  TempDir dir;
  std::string path = dir.File("t.db");
  auto store = Store::Open(Opts(path), kTestMigrations);
  ASSERT_TRUE(store.ok());
  // A foreign connection (standing in for another process) holds the write lock.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  absl::Status s =
      (*store)->Write([](SqliteDb& db) { return db.Exec("INSERT INTO a VALUES (1, 1)"); });
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_THAT(s.message(), HasSubstr("locked"));
  // Reads are unaffected in WAL mode.
  EXPECT_TRUE(Count(**store, "a").ok());
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  EXPECT_TRUE(
      (*store)->Write([](SqliteDb& db) { return db.Exec("INSERT INTO a VALUES (1, 1)"); }).ok());
}

TEST(StoreTest, ConstraintsMapToCanonicalCodes) {
  TempDir dir;
  auto store = Store::Open(Opts(dir.File("t.db")), kTestMigrations);
  ASSERT_TRUE(store.ok());
  Store& st = **store;
  ASSERT_TRUE(st.Write([](SqliteDb& db) { return db.Exec("INSERT INTO a VALUES (1, 1)"); }).ok());
  EXPECT_EQ(st.Write([](SqliteDb& db) { return db.Exec("INSERT INTO a VALUES (1, 2)"); }).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(st.Write([](SqliteDb& db) { return db.Exec("INSERT INTO a VALUES (2, -1)"); }).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(st.Write([](SqliteDb& db) { return db.Exec("INSERT INTO b VALUES (1, 99)"); }).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(st.Write([](SqliteDb& db) { return db.Exec("INSERT INTO b VALUES (1, 1)"); }).ok());
  EXPECT_EQ(st.Write([](SqliteDb& db) { return db.Exec("DELETE FROM a WHERE id = 1"); }).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(StoreTest, FailedTransactionRollsBackEveryStatement) {
  TempDir dir;
  auto store = Store::Open(Opts(dir.File("t.db")), kTestMigrations);
  ASSERT_TRUE(store.ok());
  absl::Status s = (*store)->Write([](SqliteDb& db) -> absl::Status {
    absl::Status first = db.Exec("INSERT INTO a VALUES (1, 1)");
    if (!first.ok()) return first;
    return absl::AbortedError("caller gave up");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(*Count(**store, "a"), 0);
}

TEST(StoreTest, ConcurrentReadModifyWriteLosesNoUpdate) {
  TempDir dir;
  auto store = Store::Open(Opts(dir.File("t.db")), kTestMigrations);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(
      (*store)->Write([](SqliteDb& db) { return db.Exec("INSERT INTO a VALUES (1, 0)"); }).ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        absl::Status s = (*store)->Write([](SqliteDb& db) -> absl::Status {
          auto v = db.QueryInt("SELECT v FROM a WHERE id = 1");
          if (!v.ok()) return v.status();
          return db.Exec(absl::StrCat("UPDATE a SET v = ", *v + 1, " WHERE id = 1"));
        });
        EXPECT_TRUE(s.ok()) << s;
      }
    });
  }
  for (auto& t : threads) t.join();
  int64_t v = 0;
  ASSERT_TRUE((*store)
                  ->Read([&](SqliteDb& db) -> absl::Status {
                    v = *db.QueryInt("SELECT v FROM a WHERE id = 1");
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(v, 100);
}

TEST(StoreTest, InitialSchemaEnforcesItsConstraints) {
  TempDir dir;
  auto store = Store::Open(Opts(dir.File("t.db")), EmbeddedMigrations());
  ASSERT_TRUE(store.ok()) << store.status();
  Store& st = **store;
  auto exec = [&](const std::string& sql) {
    return st.Write([&](SqliteDb& db) { return db.Exec(sql); });
  };
  // A route target must name an existing provider.
  ASSERT_TRUE(exec("INSERT INTO routes VALUES ('r', '{}', 1, 0, 0)").ok());
  EXPECT_EQ(exec("INSERT INTO route_targets VALUES ('r', 0, 'missing', 'm')").code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(exec("INSERT INTO providers VALUES ('p', NULL, '{}', 1, 0, 0)").ok());
  ASSERT_TRUE(exec("INSERT INTO route_targets VALUES ('r', 0, 'p', 'm')").ok());
  // A provider in use cannot be deleted; a route's targets go with it.
  EXPECT_EQ(exec("DELETE FROM providers WHERE name = 'p'").code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(exec("DELETE FROM routes WHERE name = 'r'").ok());
  EXPECT_EQ(*Count(st, "route_targets"), 0);
  // Specs must be JSON; revisions positive.
  EXPECT_EQ(exec("INSERT INTO callers VALUES ('c', 'not json', 1, 0, 0)").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(exec("INSERT INTO callers VALUES ('c', '{}', 0, 0, 0)").code(),
            absl::StatusCode::kInvalidArgument);
  // Caller key digests are 64 lowercase hex characters, unique.
  ASSERT_TRUE(exec("INSERT INTO callers VALUES ('c', '{}', 1, 0, 0)").ok());
  std::string digest(64, 'a');
  EXPECT_EQ(exec("INSERT INTO caller_keys (key_id, caller, sha256, prefix, create_time, "
                 "revoke_time) VALUES ('k0', 'c', 'ABC', 'tpk_', 0, NULL)")
                .code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(exec(absl::StrCat("INSERT INTO caller_keys (key_id, caller, sha256, prefix, "
                                "create_time, revoke_time) VALUES ('k1', 'c', '",
                                digest, "', 'tpk_', 0, NULL)"))
                  .ok());
  EXPECT_EQ(exec(absl::StrCat("INSERT INTO caller_keys (key_id, caller, sha256, prefix, "
                              "create_time, revoke_time) VALUES ('k2', 'c', '",
                              digest, "', 'tpk_', 0, NULL)"))
                .code(),
            absl::StatusCode::kAlreadyExists);
  // Only one active version per credential; a retired version keeps no ciphertext.
  ASSERT_TRUE(exec("INSERT INTO credentials VALUES ('k', '', 1, 1, 0, 0)").ok());
  ASSERT_TRUE(
      exec("INSERT INTO credential_versions VALUES ('k', 1, 1, x'00', 'fp', 0, NULL)").ok());
  EXPECT_EQ(exec("INSERT INTO credential_versions VALUES ('k', 2, 1, x'00', 'fp', 0, NULL)").code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(exec("INSERT INTO credential_versions VALUES ('k', 3, 3, x'00', 'fp', 0, NULL)").code(),
            absl::StatusCode::kInvalidArgument);
  // The audit log is append-only.
  ASSERT_TRUE(exec("INSERT INTO admin_audit (time, actor, action, resource_type, resource_name, "
                   "config_version) VALUES (0, 'a', 'x', 't', 'n', 1)")
                  .ok());
  EXPECT_FALSE(exec("UPDATE admin_audit SET actor = 'b'").ok());
  EXPECT_FALSE(exec("DELETE FROM admin_audit").ok());
}

}  // namespace
}  // namespace turnpike::controlplane
