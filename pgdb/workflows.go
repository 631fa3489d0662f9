//go:build postgres

package pgdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ork-run/ork/model"
)

// CreateWorkflow stores a new workflow; ErrExists if the name is taken.
// It validates the workflow as the file database does.
func (d *DB) CreateWorkflow(ctx context.Context, w *model.Workflow) error {
	data, err := prepareWorkflow(w)
	if err != nil {
		return err
	}
	tag, err := d.pool.Exec(ctx, `INSERT INTO workflows (name, id, definition, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING`, w.Name, w.ID, data, w.CreatedAt, w.UpdatedAt)
	if err != nil {
		return fmt.Errorf("create workflow %q: %w", w.Name, d.connError(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("workflow %q: %w", w.Name, model.ErrExists)
	}
	return nil
}

// PutWorkflow stores a workflow, replacing the one of the same name
// (`ork apply`). A replaced workflow keeps its creation time.
func (d *DB) PutWorkflow(ctx context.Context, w *model.Workflow) error {
	if w.UpdatedAt.IsZero() {
		w.UpdatedAt = time.Now().UTC()
	}
	data, err := prepareWorkflow(w)
	if err != nil {
		return err
	}
	err = d.pool.QueryRow(ctx, `INSERT INTO workflows (name, id, definition, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (name) DO UPDATE SET id = excluded.id,
			definition = jsonb_set(excluded.definition, '{created_at}', to_jsonb(workflows.created_at)),
			updated_at = excluded.updated_at
		RETURNING created_at`, w.Name, w.ID, data, w.CreatedAt, w.UpdatedAt).Scan(&w.CreatedAt)
	if err != nil {
		return fmt.Errorf("store workflow %q: %w", w.Name, d.connError(err))
	}
	w.CreatedAt = w.CreatedAt.UTC()
	return nil
}

func prepareWorkflow(w *model.Workflow) ([]byte, error) {
	w.Normalize()
	if err := w.Validate(); err != nil {
		return nil, fmt.Errorf("workflow %q: %w", w.Name, err)
	}
	now := time.Now().UTC()
	if w.CreatedAt.IsZero() {
		w.CreatedAt = now
	}
	if w.UpdatedAt.IsZero() {
		w.UpdatedAt = w.CreatedAt
	}
	return json.Marshal(w)
}

func decodeWorkflow(data []byte) (*model.Workflow, error) {
	var w model.Workflow
	if err := unmarshal(data, &w); err != nil {
		return nil, err
	}
	w.Normalize()
	w.CreatedAt = w.CreatedAt.UTC()
	w.UpdatedAt = w.UpdatedAt.UTC()
	return &w, nil
}

// GetWorkflow returns the workflow with that name, or ErrNotFound.
func (d *DB) GetWorkflow(ctx context.Context, name string) (*model.Workflow, error) {
	return again(ctx, func() (*model.Workflow, error) { return d.getWorkflow(ctx, name) })
}

// getWorkflow is GetWorkflow, tried once.
func (d *DB) getWorkflow(ctx context.Context, name string) (*model.Workflow, error) {
	var data []byte
	err := d.pool.QueryRow(ctx, `SELECT definition FROM workflows WHERE name = $1`, name).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("workflow %q: %w", name, model.ErrNotFound)
	}
	if err != nil {
		return nil, d.connError(err)
	}
	w, err := decodeWorkflow(data)
	if err != nil {
		return nil, fmt.Errorf("workflow %q in %s: %w", name, d.where, err)
	}
	return w, nil
}

// ListWorkflows returns every workflow, by name.
func (d *DB) ListWorkflows(ctx context.Context) ([]*model.Workflow, error) {
	return again(ctx, func() ([]*model.Workflow, error) { return d.listWorkflows(ctx) })
}

// listWorkflows is ListWorkflows, tried once.
func (d *DB) listWorkflows(ctx context.Context) ([]*model.Workflow, error) {
	rows, err := d.pool.Query(ctx, `SELECT name, definition FROM workflows ORDER BY name COLLATE "C"`)
	if err != nil {
		return nil, d.connError(err)
	}
	var out []*model.Workflow
	var errs []error
	var name string
	var data []byte
	_, err = pgx.ForEachRow(rows, []any{&name, &data}, func() error {
		w, err := decodeWorkflow(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("workflow %q in %s: %w", name, d.where, err))
			return nil
		}
		out = append(out, w)
		return nil
	})
	if err != nil {
		return nil, d.connError(err)
	}
	return out, errors.Join(errs...)
}

// DeleteWorkflow removes a workflow; its runs stay.
func (d *DB) DeleteWorkflow(ctx context.Context, name string) error {
	tag, err := d.pool.Exec(ctx, `DELETE FROM workflows WHERE name = $1`, name)
	if err != nil {
		return d.connError(err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("workflow %q: %w", name, model.ErrNotFound)
	}
	return nil
}
