// Package report reads the reports mail systems send back about a message
// after accepting it:
//
//   - delivery status notifications, multipart/report;
//     report-type=delivery-status (RFC 3464, RFC 3462/6522): a recipient
//     whose Action is "failed" with a 5.x.x Status (RFC 3463) is a hard
//     bounce; 4.x.x failures and delayed/delivered/relayed/expanded actions
//     are not;
//   - complaint reports in the Abuse Reporting Format, multipart/report;
//     report-type=feedback-report (RFC 5965), except Feedback-Type
//     "not-spam".
//
// It parses with github.com/emersion/go-message and keeps nothing of the
// report but its kind and status code: reports quote addresses and the
// original message's headers, which are PHI here.
package report
