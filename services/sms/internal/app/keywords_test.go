package app

import "testing"

func TestParseKeyword(t *testing.T) {
	tests := []struct {
		give string
		want Keyword
	}{
		{"STOP", KeywordStop}, {"stop", KeywordStop}, {" Stop. ", KeywordStop}, {"STOPALL", KeywordStop},
		{"unsubscribe", KeywordStop}, {"Cancel", KeywordStop}, {"END", KeywordStop}, {"quit!", KeywordStop},
		{"START", KeywordStart}, {"unstop", KeywordStart}, {"Yes", KeywordStart},
		{"HELP", KeywordHelp}, {"info?", KeywordHelp},
		{"please stop texting on Sunday", KeywordOther}, {"STOP IT", KeywordOther}, {"", KeywordOther},
		{"yes please", KeywordOther}, {"stopp", KeywordOther},
	}
	for _, tt := range tests {
		if got := ParseKeyword(tt.give); got != tt.want {
			t.Errorf("ParseKeyword(%q) = %s, want %s", tt.give, got, tt.want)
		}
	}
}
