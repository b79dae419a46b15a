package dsl

// The built-in kinds register themselves into component.Default.
import (
	_ "github.com/pipe-dsl/pipe/connectors"
	_ "github.com/pipe-dsl/pipe/connectors/kafka"
	_ "github.com/pipe-dsl/pipe/connectors/postgres"
	_ "github.com/pipe-dsl/pipe/stages"
)
