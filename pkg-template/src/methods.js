// The public method names, shared by the script-tag build (the snippet carries its own copy).
export const METHODS = "init page track identify reset setTraits setConsent forget loadSegments segments inSegment explain decide profile anonymousId userId on off flush refresh evalCondition".split(" ");
export const PROMISE_METHODS = "init identify loadSegments setConsent forget flush".split(" ");
export const QUERIES = "segments inSegment explain decide profile anonymousId userId".split(" ");
