package hl7map_test

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
)

func tsp(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }
