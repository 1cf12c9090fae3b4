package mllp_test

import "strconv"

func strconvF(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
