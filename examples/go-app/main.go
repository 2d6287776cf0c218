// Command go-app is a small HTTP service that reads its feature flags through the
// OpenFeature Go SDK with the flagsync provider. GET /data answers {"mode":"beta",...}
// while the flag beta_mode is on and {"mode":"classic",...} otherwise; the switch
// happens live when the daemon publishes a new snapshot.
//
//	go run ./examples/go-app -flags var/flags.json
//	go run ./examples/go-app -redis redis://127.0.0.1:6379/0 -prefix flagsync:quickstart
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/redis/go-redis/v9"

	"github.com/flagsync/flagsync/provider"
	"github.com/flagsync/flagsync/transport"
)

func main() {
	if err := run(); err != nil {
		slog.Error("go-app", "err", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", envOr("GO_APP_ADDR", "127.0.0.1:8081"), "listen address (env GO_APP_ADDR)")
	path := flag.String("flags", os.Getenv("FLAGSYNC_FILE"), "snapshot file written by the daemon, e.g. var/flags.json (env FLAGSYNC_FILE)")
	redisURL := flag.String("redis", os.Getenv("FLAGSYNC_REDIS_URL"), "Redis URL to read the snapshot from instead of a file (env FLAGSYNC_REDIS_URL)")
	prefix := flag.String("prefix", envOr("FLAGSYNC_PREFIX", transport.DefaultPrefix("quickstart")), "Redis key prefix (env FLAGSYNC_PREFIX)")
	flag.Parse()

	var p *provider.Provider
	switch {
	case *redisURL != "":
		opts, err := redis.ParseURL(*redisURL)
		if err != nil {
			return fmt.Errorf("redis url: %w", err)
		}
		client := redis.NewClient(opts)
		defer client.Close()
		p = provider.NewRedis(client, *prefix)
	case *path != "":
		p = provider.NewFile(*path)
	default:
		return errors.New("give -flags FILE or -redis URL (or FLAGSYNC_FILE / FLAGSYNC_REDIS_URL)")
	}

	// A missing snapshot is not fatal: the app starts, serves the defaults
	// ("classic") and switches over as soon as the provider becomes ready.
	if err := openfeature.SetProviderAndWait(p); err != nil {
		slog.Warn("flags not ready yet; serving defaults", "err", err)
	}
	defer openfeature.Shutdown()

	srv := &http.Server{Addr: *addr, Handler: newHandler(openfeature.NewDefaultClient()), ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	slog.Info("listening", "addr", *addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// data is the /data response.
type data struct {
	Mode    string   `json:"mode"`
	User    string   `json:"user,omitempty"`
	Items   []string `json:"items"`
	Variant string   `json:"variant,omitempty"` // the flag variant served, for debugging
}

// newHandler serves GET /data, switching on the flag beta_mode for the user named by
// the X-User-Id header (the targeting key) and the email query parameter.
func newHandler(flags *openfeature.Client) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /data", func(w http.ResponseWriter, r *http.Request) {
		user := r.Header.Get("X-User-Id")
		attrs := map[string]any{}
		if email := r.URL.Query().Get("email"); email != "" {
			attrs["email"] = email
		}
		// On any error (no snapshot yet, flag missing) the client returns the default: classic.
		beta, _ := flags.BooleanValueDetails(r.Context(), "beta_mode", false,
			openfeature.NewEvaluationContext(user, attrs))
		resp := data{Mode: "classic", User: user, Items: []string{"a", "b"}, Variant: beta.Variant}
		if beta.Value {
			resp.Mode = "beta"
			resp.Items = append(resp.Items, "beta-only")
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	})
	return mux
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
