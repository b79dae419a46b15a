package dsl

// The built-in kinds register themselves into component.Default.
import (
	_ "github.com/pipe-dsl/pipe/connectors"
	_ "github.com/pipe-dsl/pipe/connectors/nats"
	_ "github.com/pipe-dsl/pipe/connectors/redis"
	_ "github.com/pipe-dsl/pipe/stages"
)
