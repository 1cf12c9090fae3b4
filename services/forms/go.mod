module github.com/carenotify/carenotify/services/forms

go 1.26.0

require (
	github.com/carenotify/carenotify/pkg v0.0.0
	github.com/carenotify/carenotify/proto v0.0.0
)

replace (
	github.com/carenotify/carenotify/pkg => ../../pkg
	github.com/carenotify/carenotify/proto => ../../proto
)
