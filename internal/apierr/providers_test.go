package apierr

import "testing"

// TestProviderQuotaShapes: each provider's sign of an exhausted quota is
// a quota, and its rate limits and other errors are not.
func TestProviderQuotaShapes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		quota  bool
	}{
		// Groq answers 400 blocked_api_access once the organisation's
		// spend limit is reached (console.groq.com/docs/spend-limits).
		{"groq spend limit", 400, `{"error":{"message":"API access has been blocked for this organization.","type":"invalid_request_error","code":"blocked_api_access"}}`, true},
		{"groq rate limit", 429, `{"error":{"message":"Rate limit reached for model ` + "`whisper-large-v3`" + ` in organization ` + "`org_x`" + ` service tier ` + "`on_demand`" + ` on requests per day (RPD): Limit 2000, Used 2000, Requested 1. Please try again in 43.2s.","type":"requests","code":"rate_limit_exceeded"}}`, false},
		{"groq prompt too long", 400, `{"error":{"message":"prompt length must be 896 characters or fewer, but provided prompt contains 904 characters","type":"invalid_request_error"}}`, false},
		{"azure rate limit", 429, `{"error":{"code":"429","message":"Requests to the Audio_Transcriptions Operation under Azure OpenAI API version 2024-10-21 have exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry after 33 seconds."}}`, false},
		{"azure quota", 429, `{"error":{"code":"InsufficientQuota","message":"The quota of this resource is exhausted."}}`, true},
		{"azure deployment", 404, `{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}`, false},
		{"speaches bad key", 403, `{"detail":"Invalid API key. The provided API key is incorrect."}`, false},
	} {
		f := Parse(tc.status, nil, []byte(tc.body))
		if got := IsQuota(tc.status, f); got != tc.quota || f.Message == "" {
			t.Errorf("%s: quota %v, want %v (%+v)", tc.name, got, tc.quota, f)
		}
	}
}
