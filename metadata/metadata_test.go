package metadata

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestOpenCreatesSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "metadata.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, err := db.Version()
	if err != nil || v != SchemaVersion() {
		t.Fatalf("version = %d, %v; want %d", v, err, SchemaVersion())
	}
	err = db.View(context.Background(), func(tx *bolt.Tx) error {
		for _, b := range [][]byte{BucketImages, BucketContainers, BucketSnapshots, BucketLeases, BucketVolumes, BucketNetworks, BucketDanglingImages, BucketBuildCache} {
			if tx.Bucket(b) == nil {
				t.Errorf("bucket %s missing", b)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMigrationsRunOnceInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metadata.db")
	var ran []string
	step := func(name string) Migration {
		return Migration{Name: name, Run: func(tx *bolt.Tx) error { ran = append(ran, name); return nil }}
	}
	v1 := []Migration{step("a")}
	db, err := Open(path, withMigrations(v1))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	v2 := []Migration{step("a"), step("b"), step("c")}
	if db, err = Open(path, withMigrations(v2)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err = Open(path, withMigrations(v2)); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := len(ran); got != 3 || ran[0] != "a" || ran[1] != "b" || ran[2] != "c" {
		t.Fatalf("migrations ran %v, want [a b c]", ran)
	}
	if v, _ := db.Version(); v != 3 {
		t.Fatalf("version %d, want 3", v)
	}
}

func TestFailedMigrationKeepsOldSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metadata.db")
	db, err := Open(path, withMigrations([]Migration{{Name: "a", Run: func(*bolt.Tx) error { return nil }}}))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	boom := errors.New("boom")
	bad := []Migration{
		{Name: "a", Run: func(*bolt.Tx) error { return nil }},
		{From: 1, Name: "b", Run: func(tx *bolt.Tx) error {
			if _, err := tx.CreateBucket([]byte("half-done")); err != nil {
				return err
			}
			return boom
		}},
	}
	if _, err := Open(path, withMigrations(bad)); !errors.Is(err, boom) {
		t.Fatalf("Open = %v, want the migration's error", err)
	}
	db, err = Open(path, withMigrations(bad[:1]))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, _ := db.Version(); v != 1 {
		t.Fatalf("version %d after failed migration, want 1", v)
	}
	db.View(context.Background(), func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("half-done")) != nil {
			t.Error("failed migration left a bucket behind")
		}
		return nil
	})
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metadata.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(path, withMigrations(nil)); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open by an older binary = %v, want ErrNewerSchema", err)
	}
}

func TestSecondOpenWaitsForLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metadata.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := Open(path, WithTimeout(50*time.Millisecond)); err == nil {
		t.Fatal("a second Open of a locked database succeeded")
	}
}

func TestCancelledContext(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "metadata.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := db.Update(ctx, func(*bolt.Tx) error { t.Fatal("ran"); return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Update = %v", err)
	}
}
