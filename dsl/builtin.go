package dsl

// The built-in kinds register themselves into component.Default.
import (
	_ "github.com/pipe-dsl/pipe/connectors"
	_ "github.com/pipe-dsl/pipe/connectors/amqp"
	_ "github.com/pipe-dsl/pipe/connectors/httpserver"
	_ "github.com/pipe-dsl/pipe/connectors/kafka"
	_ "github.com/pipe-dsl/pipe/connectors/mqtt"
	_ "github.com/pipe-dsl/pipe/connectors/nats"
	_ "github.com/pipe-dsl/pipe/connectors/postgres"
	_ "github.com/pipe-dsl/pipe/connectors/redis"
	_ "github.com/pipe-dsl/pipe/stages"
)
