// A peer for scripts/bench: the Go application that the common guide to
// monitoring a Go service with Prometheus and Grafana builds, rewritten from
// its description so that the harness can measure it beside the Rust
// variants under the same load.
//
// As in the guide: gin with gin.Default() (request logger and recovery),
// GET /health and GET /v1/users answering a JSON message, GET /metrics from
// promhttp.HandlerFor on a registry of its own, and a middleware counting
// api_http_request_total{path,status} and, from status 400 up,
// api_http_request_error_total{path,status}, with path taken from the raw
// request path. That label is the guide's choice and is kept as it is: it
// has no bound, since every new path a client sends makes new series, and
// the scanner flood is there to show what that costs.
//
// Not in the guide, added for the harness: GET / answering a short
// plain-text greeting, because the static-route comparison sends GET / to
// every variant; ACCESS_LOG=off, which builds the engine with gin.New() and
// recovery only, because the guide's figure is quoted both with its access
// log as written and without; and PORT (default 8000) with BIND_ADDRESS
// (default 127.0.0.1), read as the Rust baselines read them, so the harness
// starts every variant alike.
package main

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// As long as the Rust baselines' greeting, so that every variant writes a
// body of the same size on the static route.
const greeting = "Hello from gin guide\n"

func main() {
	address, err := listenAddress()
	if err != nil {
		log.Fatal(err)
	}

	registry := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "api_http_request_total",
		Help: "Requests answered, by path and status.",
	}, []string{"path", "status"})
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "api_http_request_error_total",
		Help: "Requests answered with status 400 or more, by path and status.",
	}, []string{"path", "status"})
	registry.MustRegister(requests, failures)

	var engine *gin.Engine
	if os.Getenv("ACCESS_LOG") == "off" {
		engine = gin.New()
		engine.Use(gin.Recovery())
	} else {
		engine = gin.Default()
	}
	// Registered on the engine rather than on a group, so that gin runs it
	// for unmatched routes too and 404s are counted like the guide's.
	engine.Use(func(c *gin.Context) {
		c.Next()
		path := c.Request.URL.Path
		status := c.Writer.Status()
		code := strconv.Itoa(status)
		requests.WithLabelValues(path, code).Inc()
		if status >= http.StatusBadRequest {
			failures.WithLabelValues(path, code).Inc()
		}
	})

	engine.GET("/", func(c *gin.Context) {
		c.String(http.StatusOK, greeting)
	})
	engine.GET("/health", func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"message": "healthy"})
	})
	engine.GET("/v1/users", func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"message": "the users"})
	})
	engine.GET("/metrics", gin.WrapH(
		promhttp.HandlerFor(registry, promhttp.HandlerOpts{})))

	if err := engine.Run(address); err != nil {
		log.Fatal(err)
	}
}

// listenAddress reads PORT and BIND_ADDRESS with the Rust baselines'
// defaults, and refuses values they would refuse, so that a mistyped
// setting stops the process instead of moving it to another address.
func listenAddress() (string, error) {
	port := "8000"
	if value, ok := os.LookupEnv("PORT"); ok {
		if _, err := strconv.ParseUint(value, 10, 16); err != nil {
			return "", fmt.Errorf("PORT is not a port number: %q", value)
		}
		port = value
	}
	ip := "127.0.0.1"
	if value, ok := os.LookupEnv("BIND_ADDRESS"); ok {
		if net.ParseIP(value) == nil {
			return "", fmt.Errorf("BIND_ADDRESS is not an IP address: %q", value)
		}
		ip = value
	}
	return net.JoinHostPort(ip, port), nil
}
