module github.com/carenotify/carenotify/pkg

go 1.26.0
