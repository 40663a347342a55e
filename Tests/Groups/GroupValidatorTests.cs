using ClusterQueue.Contracts;
using ClusterQueue.Node.Groups;

namespace ClusterQueue.Tests.Groups;

public sealed class GroupValidatorTests
{
    private static readonly GroupDefinition Minimal = new()
    {
        RatePerSecond = 10,
        Burst = 5,
        MaxConcurrency = 2,
        Target = new TargetDefinition { Url = "https://downstream.example/hooks" },
    };

    private static readonly GroupDefinition Full = Minimal with
    {
        HandlerTimeoutSeconds = 60,
        MaxAttempts = 8,
        RetryBackoff = new RetryBackoffDefinition { InitialSeconds = 2, MaxSeconds = 600 },
        Verification = new VerificationDefinition { Scheme = "github", Secret = "gh-secret" },
        MaxPayloadBytes = 4096,
    };

    /// <summary>Each case breaks exactly one field of an otherwise valid definition; the value is the path the error must name.</summary>
    private static readonly Dictionary<string, (GroupDefinition Definition, string Path)> InvalidCases = new()
    {
        ["rate missing"] = (Minimal with { RatePerSecond = null }, "ratePerSecond"),
        ["rate zero"] = (Minimal with { RatePerSecond = 0 }, "ratePerSecond"),
        ["rate negative"] = (Minimal with { RatePerSecond = -1 }, "ratePerSecond"),
        ["rate NaN"] = (Minimal with { RatePerSecond = double.NaN }, "ratePerSecond"),
        ["rate +Infinity"] = (Minimal with { RatePerSecond = double.PositiveInfinity }, "ratePerSecond"),
        ["rate -Infinity"] = (Minimal with { RatePerSecond = double.NegativeInfinity }, "ratePerSecond"),
        ["rate above max"] = (Minimal with { RatePerSecond = GroupValidator.MaxRatePerSecond * 1.5 }, "ratePerSecond"),
        ["burst missing"] = (Minimal with { Burst = null }, "burst"),
        ["burst zero"] = (Minimal with { Burst = 0 }, "burst"),
        ["burst negative"] = (Minimal with { Burst = -3 }, "burst"),
        ["burst above max"] = (Minimal with { Burst = GroupValidator.MaxBurst + 1 }, "burst"),
        ["concurrency missing"] = (Minimal with { MaxConcurrency = null }, "maxConcurrency"),
        ["concurrency zero"] = (Minimal with { MaxConcurrency = 0 }, "maxConcurrency"),
        ["concurrency above max"] = (Minimal with { MaxConcurrency = GroupValidator.MaxConcurrencyLimit + 1 }, "maxConcurrency"),
        ["target missing"] = (Minimal with { Target = null }, "target.url"),
        ["url missing"] = (Minimal with { Target = new TargetDefinition() }, "target.url"),
        ["url empty"] = (Minimal with { Target = new TargetDefinition { Url = "" } }, "target.url"),
        ["url blank"] = (Minimal with { Target = new TargetDefinition { Url = "   " } }, "target.url"),
        ["url ftp"] = (Minimal with { Target = new TargetDefinition { Url = "ftp://downstream.example/hooks" } }, "target.url"),
        ["url file"] = (Minimal with { Target = new TargetDefinition { Url = "file:///etc/passwd" } }, "target.url"),
        ["url mailto"] = (Minimal with { Target = new TargetDefinition { Url = "mailto:ops@downstream.example" } }, "target.url"),
        ["url rooted relative"] = (Minimal with { Target = new TargetDefinition { Url = "/hooks/orders" } }, "target.url"),
        ["url relative"] = (Minimal with { Target = new TargetDefinition { Url = "hooks/orders" } }, "target.url"),
        ["url host only"] = (Minimal with { Target = new TargetDefinition { Url = "downstream.example" } }, "target.url"),
        ["url with user and password"] = (Minimal with { Target = new TargetDefinition { Url = "https://user:secret@downstream.example/hooks" } }, "target.url"),
        ["url with user only"] = (Minimal with { Target = new TargetDefinition { Url = "https://token@downstream.example/hooks" } }, "target.url"),
        ["url with empty userinfo"] = (Minimal with { Target = new TargetDefinition { Url = "https://@downstream.example/hooks" } }, "target.url"),
        ["url with escaped userinfo"] = (Minimal with { Target = new TargetDefinition { Url = "https://us%40er:p%3Ass@downstream.example/hooks" } }, "target.url"),
        ["timeout zero"] = (Minimal with { HandlerTimeoutSeconds = 0 }, "handlerTimeoutSeconds"),
        ["timeout negative"] = (Minimal with { HandlerTimeoutSeconds = -5 }, "handlerTimeoutSeconds"),
        ["timeout NaN"] = (Minimal with { HandlerTimeoutSeconds = double.NaN }, "handlerTimeoutSeconds"),
        ["timeout Infinity"] = (Minimal with { HandlerTimeoutSeconds = double.PositiveInfinity }, "handlerTimeoutSeconds"),
        ["timeout above max"] = (Minimal with { HandlerTimeoutSeconds = GroupValidator.MaxHandlerTimeoutSeconds + 1 }, "handlerTimeoutSeconds"),
        ["timeout rounding to zero"] = (Minimal with { HandlerTimeoutSeconds = 1e-9 }, "handlerTimeoutSeconds"),
        ["timeout below 1 ms"] = (Minimal with { HandlerTimeoutSeconds = 0.0009999 }, "handlerTimeoutSeconds"),
        ["timeout smallest double"] = (Minimal with { HandlerTimeoutSeconds = double.Epsilon }, "handlerTimeoutSeconds"),
        ["attempts zero"] = (Minimal with { MaxAttempts = 0 }, "maxAttempts"),
        ["attempts negative"] = (Minimal with { MaxAttempts = -1 }, "maxAttempts"),
        ["attempts above max"] = (Minimal with { MaxAttempts = GroupValidator.MaxAttemptsLimit + 1 }, "maxAttempts"),
        ["backoff initial zero"] = (Minimal with { RetryBackoff = new RetryBackoffDefinition { InitialSeconds = 0 } }, "retryBackoff.initialSeconds"),
        ["backoff initial negative"] = (Minimal with { RetryBackoff = new RetryBackoffDefinition { InitialSeconds = -1, MaxSeconds = 10 } }, "retryBackoff.initialSeconds"),
        ["backoff initial NaN"] = (Minimal with { RetryBackoff = new RetryBackoffDefinition { InitialSeconds = double.NaN } }, "retryBackoff.initialSeconds"),
        ["backoff initial rounding to zero"] = (Minimal with { RetryBackoff = new RetryBackoffDefinition { InitialSeconds = 1e-9, MaxSeconds = 10 } }, "retryBackoff.initialSeconds"),
        ["backoff initial below 1 ms"] = (Minimal with { RetryBackoff = new RetryBackoffDefinition { InitialSeconds = 0.0005 } }, "retryBackoff.initialSeconds"),
        ["backoff initial above max"] = (Minimal with { RetryBackoff = new RetryBackoffDefinition { InitialSeconds = GroupValidator.MaxBackoffSeconds + 1 } }, "retryBackoff.initialSeconds"),
        ["backoff max below initial"] = (Minimal with { RetryBackoff = new RetryBackoffDefinition { InitialSeconds = 10, MaxSeconds = 5 } }, "retryBackoff.maxSeconds"),
        ["backoff max below default initial"] = (Minimal with { RetryBackoff = new RetryBackoffDefinition { MaxSeconds = 0.5 } }, "retryBackoff.maxSeconds"),
        ["backoff max NaN"] = (Minimal with { RetryBackoff = new RetryBackoffDefinition { MaxSeconds = double.NaN } }, "retryBackoff.maxSeconds"),
        ["backoff max Infinity"] = (Minimal with { RetryBackoff = new RetryBackoffDefinition { MaxSeconds = double.PositiveInfinity } }, "retryBackoff.maxSeconds"),
        ["backoff max above max"] = (Minimal with { RetryBackoff = new RetryBackoffDefinition { MaxSeconds = GroupValidator.MaxBackoffSeconds + 1 } }, "retryBackoff.maxSeconds"),
        ["scheme missing"] = (Minimal with { Verification = new VerificationDefinition { Secret = "s" } }, "verification.scheme"),
        ["scheme unknown"] = (Minimal with { Verification = new VerificationDefinition { Scheme = "md5", Secret = "s" } }, "verification.scheme"),
        ["secret missing"] = (Minimal with { Verification = new VerificationDefinition { Scheme = "github" } }, "verification.secret"),
        ["secret empty"] = (Minimal with { Verification = new VerificationDefinition { Scheme = "stripe", Secret = "" } }, "verification.secret"),
        ["secret too long"] = (Minimal with { Verification = new VerificationDefinition { Scheme = "hmac-sha256", Secret = new string('k', 1025) } }, "verification.secret"),
        ["standard-webhooks secret not base64"] = (Minimal with { Verification = new VerificationDefinition { Scheme = "standard-webhooks", Secret = "whsec_not base64!" } }, "verification.secret"),
        ["payload zero"] = (Minimal with { MaxPayloadBytes = 0 }, "maxPayloadBytes"),
        ["payload negative"] = (Minimal with { MaxPayloadBytes = -1 }, "maxPayloadBytes"),
        ["payload above max"] = (Minimal with { MaxPayloadBytes = GroupValidator.MaxPayloadBytesLimit + 1 }, "maxPayloadBytes"),
        ["steps zero"] = (Minimal with { MaxSteps = 0 }, "maxSteps"),
        ["steps above max"] = (Minimal with { MaxSteps = GroupValidator.MaxStepsLimit + 1 }, "maxSteps"),
    };

    private static readonly Dictionary<string, GroupDefinition> ValidCases = new()
    {
        ["minimal"] = Minimal,
        ["every field"] = Full,
        ["rate below one"] = Minimal with { RatePerSecond = 0.1 },
        ["rate tiny"] = Minimal with { RatePerSecond = 0.0001 },
        ["rate at max"] = Minimal with { RatePerSecond = GroupValidator.MaxRatePerSecond },
        ["burst one"] = Minimal with { Burst = 1, MaxConcurrency = 1 },
        ["limits at max"] = Minimal with { Burst = GroupValidator.MaxBurst, MaxConcurrency = GroupValidator.MaxConcurrencyLimit },
        ["plain http"] = Minimal with { Target = new TargetDefinition { Url = "http://127.0.0.1:9000/hooks?x=1" } },
        ["backoff initial only"] = Minimal with { RetryBackoff = new RetryBackoffDefinition { InitialSeconds = 5 } },
        ["backoff max equals initial"] = Minimal with { RetryBackoff = new RetryBackoffDefinition { InitialSeconds = 5, MaxSeconds = 5 } },
        ["standard-webhooks secret"] = Minimal with { Verification = new VerificationDefinition { Scheme = "standard-webhooks", Secret = "whsec_" + Convert.ToBase64String(new byte[32]) } },
        ["scheme any case"] = Minimal with { Verification = new VerificationDefinition { Scheme = "Shopify", Secret = "shpss" } },
        ["payload at max"] = Minimal with { MaxPayloadBytes = GroupValidator.MaxPayloadBytesLimit },
        ["timeout at max"] = Minimal with { HandlerTimeoutSeconds = GroupValidator.MaxHandlerTimeoutSeconds },
        ["timeout 1 ms"] = Minimal with { HandlerTimeoutSeconds = 0.001 },
        ["backoff 1 ms"] = Minimal with { RetryBackoff = new RetryBackoffDefinition { InitialSeconds = 0.001, MaxSeconds = 0.001 } },
        ["url with @ in its path and query"] = Minimal with { Target = new TargetDefinition { Url = "https://downstream.example/hooks/a@b?to=ops@example.com" } },
        ["one step"] = Minimal with { MaxSteps = 1 },
        ["steps at max"] = Minimal with { MaxSteps = GroupValidator.MaxStepsLimit },
    };

    public static TheoryData<string> InvalidCaseNames => new(InvalidCases.Keys);

    public static TheoryData<string> ValidCaseNames => new(ValidCases.Keys);

    [Theory]
    [MemberData(nameof(ValidCaseNames))]
    public void Validate_ValidDefinition_HasNoErrors(string caseName)
    {
        var errors = GroupValidator.Validate(ValidCases[caseName]);

        Assert.Empty(errors);
    }

    [Theory]
    [MemberData(nameof(InvalidCaseNames))]
    public void Validate_OneInvalidField_ReportsOneErrorKeyedByItsPath(string caseName)
    {
        var (definition, path) = InvalidCases[caseName];

        var errors = GroupValidator.Validate(definition);

        var error = Assert.Single(errors);
        Assert.Equal(path, error.Key);
        var message = Assert.Single(error.Value);
        Assert.False(string.IsNullOrWhiteSpace(message));
    }

    [Fact]
    public void Validate_EmptyDefinition_NamesEveryRequiredField()
    {
        var errors = GroupValidator.Validate(new GroupDefinition());

        Assert.Equal(["burst", "maxConcurrency", "ratePerSecond", "target.url"], errors.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Validate_SeveralInvalidFields_ReportsEachOne()
    {
        var definition = Full with
        {
            RatePerSecond = 0,
            Target = new TargetDefinition { Url = "ftp://x" },
            MaxAttempts = 0,
            Verification = new VerificationDefinition { Scheme = "md5", Secret = "s" },
        };

        var errors = GroupValidator.Validate(definition);

        Assert.Equal(["maxAttempts", "ratePerSecond", "target.url", "verification.scheme"], errors.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Validate_BackoffBothRoundingToZero_NamesBoth()
    {
        var errors = GroupValidator.Validate(Minimal with { RetryBackoff = new RetryBackoffDefinition { InitialSeconds = 1e-9, MaxSeconds = 1e-9 } });

        Assert.Equal(["retryBackoff.initialSeconds", "retryBackoff.maxSeconds"], errors.Keys.Order(StringComparer.Ordinal));
    }

    /// <summary>The validator judges a duration as the group will hold it (a TimeSpan), so what it accepts is never stored as less than 1 ms.</summary>
    [Theory]
    [InlineData(0.001)]
    [InlineData(0.0009999)]
    [InlineData(0.00099999999)]
    [InlineData(0.0010000001)]
    [InlineData(0.0001)]
    [InlineData(1e-7)]
    [InlineData(0.00100000000000001)]
    public void Validate_DurationNearOneMillisecond_AcceptsExactlyWhatIsHeldAsAtLeastOneMillisecond(double seconds)
    {
        var definition = Minimal with { HandlerTimeoutSeconds = seconds, RetryBackoff = new RetryBackoffDefinition { InitialSeconds = seconds, MaxSeconds = seconds } };
        var held = GroupSettings.FromValidDefinition("g", definition, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch);

        var errors = GroupValidator.Validate(definition);

        var atLeastOneMillisecond = held.HandlerTimeout >= TimeSpan.FromMilliseconds(1);
        Assert.Equal(atLeastOneMillisecond, held.BackoffInitial >= TimeSpan.FromMilliseconds(1));
        Assert.Equal(atLeastOneMillisecond ? [] : ["handlerTimeoutSeconds", "retryBackoff.initialSeconds", "retryBackoff.maxSeconds"], errors.Keys.Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData(".")]
    [InlineData("..")]
    public void IsValidId_DotSegment_ReturnsFalse(string id)
    {
        Assert.False(GroupValidator.IsValidId(id));
    }

    [Theory]
    [InlineData("a")]
    [InlineData("orders")]
    [InlineData("Orders-EU_2.v1")]
    [InlineData("...")]
    [InlineData("-_-")]
    public void IsValidId_WithAllowedCharacters_ReturnsTrue(string id)
    {
        Assert.True(GroupValidator.IsValidId(id));
    }

    [Fact]
    public void IsValidId_With128Characters_ReturnsTrue()
    {
        Assert.True(GroupValidator.IsValidId(new string('x', 128)));
    }

    [Fact]
    public void IsValidId_With129Characters_ReturnsFalse()
    {
        Assert.False(GroupValidator.IsValidId(new string('x', 129)));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("a/b")]
    [InlineData("a b")]
    [InlineData(" orders")]
    [InlineData("orders\n")]
    [InlineData("orders\r\n")]
    [InlineData("\norders")]
    [InlineData("a%2Fb")]
    [InlineData("café")]
    [InlineData("a:b")]
    [InlineData("a\\b")]
    public void IsValidId_WithOtherCharacters_ReturnsFalse(string? id)
    {
        Assert.False(GroupValidator.IsValidId(id));
    }

    [Fact]
    public void Merge_EmptyPatch_KeepsEveryField()
    {
        var merged = GroupValidator.Merge(Full, new GroupDefinition());

        Assert.Equal(Full, merged);
    }

    [Fact]
    public void Merge_PatchWithRateOnly_ReplacesRateAndKeepsTheRest()
    {
        var merged = GroupValidator.Merge(Full, new GroupDefinition { RatePerSecond = 0.5 });

        Assert.Equal(Full with { RatePerSecond = 0.5 }, merged);
    }

    [Fact]
    public void Merge_PatchWithEveryField_ReplacesEveryField()
    {
        var patch = new GroupDefinition
        {
            RatePerSecond = 1,
            Burst = 2,
            MaxConcurrency = 3,
            Target = new TargetDefinition { Url = "http://other.example/x" },
            HandlerTimeoutSeconds = 4,
            MaxAttempts = 5,
            RetryBackoff = new RetryBackoffDefinition { InitialSeconds = 6, MaxSeconds = 7 },
            Verification = new VerificationDefinition { Scheme = "stripe", Secret = "whsec_stripe" },
            MaxPayloadBytes = 8,
        };

        var merged = GroupValidator.Merge(Full, patch);

        Assert.Equal(
            new GroupDefinition
            {
                RatePerSecond = 1,
                Burst = 2,
                MaxConcurrency = 3,
                Target = new TargetDefinition { Url = "http://other.example/x" },
                HandlerTimeoutSeconds = 4,
                MaxAttempts = 5,
                RetryBackoff = new RetryBackoffDefinition { InitialSeconds = 6, MaxSeconds = 7 },
                Verification = new VerificationDefinition { Scheme = "stripe", Secret = "whsec_stripe" },
                MaxPayloadBytes = 8,
            },
            merged);
    }

    [Fact]
    public void Merge_PatchWithOneBackoffField_KeepsTheOtherBackoffField()
    {
        var merged = GroupValidator.Merge(Full, new GroupDefinition { RetryBackoff = new RetryBackoffDefinition { MaxSeconds = 900 } });

        Assert.Equal(new RetryBackoffDefinition { InitialSeconds = 2, MaxSeconds = 900 }, merged.RetryBackoff);
        Assert.Equal(Full with { RetryBackoff = merged.RetryBackoff }, merged);
    }

    [Fact]
    public void Merge_OntoDefinitionWithoutOptionalFields_LeavesThemAbsent()
    {
        var merged = GroupValidator.Merge(Minimal, new GroupDefinition { Burst = 50 });

        Assert.Equal(Minimal with { Burst = 50 }, merged);
        Assert.Null(merged.RetryBackoff);
        Assert.Null(merged.Verification);
        Assert.Null(merged.MaxPayloadBytes);
    }
}
